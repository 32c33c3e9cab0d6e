"""Bad input raises a clear error and leaves the statistics unchanged."""
import pytest
import torch

from efl.losses import EqualizedFocalLoss, EqualizedQualityFocalLoss

C = 4


def trained(loss):
    logits = torch.randn(20, C)
    labels = torch.randint(0, C + 1, (20,))
    if isinstance(loss, EqualizedQualityFocalLoss):
        loss(logits, labels, torch.rand(20), 2.0)
    else:
        loss(logits, labels, 2.0)
    return loss, {k: v.clone() for k, v in loss.state_dict().items()}


def assert_unchanged(loss, before):
    for key, value in loss.state_dict().items():
        assert torch.equal(value, before[key]), key


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("loss_cls", [EqualizedFocalLoss, EqualizedQualityFocalLoss])
def test_non_finite_logits_raise_floating_point_error_and_keep_statistics(loss_cls, bad_value):
    loss, before = trained(loss_cls(C))
    logits = torch.randn(10, C)
    logits[3, 1] = bad_value
    labels = torch.full((10,), C)
    labels[3] = 1
    with pytest.raises(FloatingPointError, match=loss_cls.__name__):
        if loss_cls is EqualizedQualityFocalLoss:
            loss(logits, labels, torch.rand(10), 1.0)
        else:
            loss(logits, labels, 1.0)
    assert_unchanged(loss, before)


@pytest.mark.parametrize(
    "logits, labels, normalizer, message",
    [
        (torch.randn(5, C + 1), torch.zeros(5, dtype=torch.long), 1.0, r"logits must be \(N, 4\)"),
        (torch.randn(5), torch.zeros(5, dtype=torch.long), 1.0, r"logits must be \(N, 4\)"),
        (torch.randint(0, 3, (5, C)), torch.zeros(5, dtype=torch.long), 1.0, "floating point"),
        (torch.randn(5, C), torch.zeros(4, dtype=torch.long), 1.0, r"labels must be .* shape \(5,\)"),
        (torch.randn(5, C), torch.zeros(5), 1.0, "labels must be an integer tensor"),
        (torch.randn(5, C), torch.tensor([0, 1, 2, 5, 4]), 1.0, r"labels must lie in \[0, 4\]"),
        (torch.randn(5, C), torch.tensor([0, -1, 2, 3, 4]), 1.0, r"labels must lie in \[0, 4\]"),
        (torch.randn(5, C), torch.zeros(5, dtype=torch.long), 0.0, "normalizer must be a finite number > 0"),
        (torch.randn(5, C), torch.zeros(5, dtype=torch.long), -3, "normalizer must be a finite number > 0"),
        (torch.randn(5, C), torch.zeros(5, dtype=torch.long), torch.tensor(0.0), "normalizer must be"),
        (torch.randn(5, C), torch.zeros(5, dtype=torch.long), torch.ones(2), "normalizer must be"),
        (torch.randn(5, C), torch.zeros(5, dtype=torch.long), float("nan"), "normalizer must be"),
    ],
)
def test_malformed_arguments_raise_value_error_naming_the_argument(logits, labels, normalizer, message):
    loss, before = trained(EqualizedFocalLoss(C))
    with pytest.raises(ValueError, match=message):
        loss(logits, labels, normalizer)
    assert_unchanged(loss, before)


@pytest.mark.parametrize(
    "scores, message",
    [
        (torch.tensor([0.5, 1.5, 0.2, 0.1, 0.0]), r"scores .* must lie in \[0, 1\]"),
        (torch.tensor([0.5, -0.1, 0.2, 0.1, 0.0]), r"scores .* must lie in \[0, 1\]"),
        (torch.tensor([0.5, float("nan"), 0.2, 0.1, 0.0]), r"scores .* must lie in \[0, 1\]"),
        (torch.rand(4), r"scores must be a float tensor of shape \(5,\)"),
    ],
)
def test_quality_scores_outside_unit_interval_raise_value_error(scores, message):
    loss, before = trained(EqualizedQualityFocalLoss(C))
    labels = torch.tensor([0, 1, 2, 3, 4])  # row 4 is background: its score is not checked
    with pytest.raises(ValueError, match=message):
        loss(torch.randn(5, C), labels, scores, 1.0)
    assert_unchanged(loss, before)


def test_background_rows_may_carry_any_score():
    loss = EqualizedQualityFocalLoss(C).eval()
    value = loss(torch.randn(2, C), torch.tensor([0, C]), torch.tensor([0.3, -5.0]), 1.0)
    assert torch.isfinite(value)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.bool])
@pytest.mark.parametrize("loss_cls", [EqualizedFocalLoss, EqualizedQualityFocalLoss])
def test_uint8_and_bool_labels_raise_value_error_naming_labels(loss_cls, dtype):
    # As an index, uint8/bool tensors are masks, not class ids.
    loss, before = trained(loss_cls(C))
    labels = torch.tensor([0, 1, 0, 1, 1], dtype=dtype)
    with pytest.raises(ValueError, match=r"labels must be an integer tensor .*uint8 or bool"):
        if loss_cls is EqualizedQualityFocalLoss:
            loss(torch.randn(5, C), labels, torch.rand(5), 1.0)
        else:
            loss(torch.randn(5, C), labels, 1.0)
    assert_unchanged(loss, before)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int16, torch.int8])
def test_narrow_signed_integer_labels_give_the_int64_result(dtype):
    loss = EqualizedFocalLoss(C).eval()
    logits, labels = torch.randn(6, C), torch.tensor([0, 1, 2, 3, 4, 4])
    assert torch.equal(loss(logits, labels.to(dtype), 2.0), loss(logits, labels, 2.0))


@pytest.mark.parametrize("alpha", [1.5, 2, float("nan"), float("inf"), "0.25"])
def test_alpha_outside_unit_interval_raises_value_error(alpha):
    with pytest.raises(ValueError, match="alpha must lie in"):
        EqualizedFocalLoss(C, alpha=alpha)


def test_alpha_none_or_negative_disables_it_as_in_fvcore():
    logits, labels = torch.randn(6, C), torch.tensor([0, 1, 2, 3, 4, 4])
    off = EqualizedFocalLoss(C, alpha=None).eval()(logits, labels, 1.0)
    assert torch.equal(EqualizedFocalLoss(C, alpha=-1).eval()(logits, labels, 1.0), off)
    # Bounds are accepted: alpha = 1 keeps only the positive entries.
    only_pos = EqualizedFocalLoss(C, alpha=1.0).eval()(logits, labels, 1.0)
    assert 0 < only_pos < off


@pytest.fixture
def scalar_reads_of_grad_tensors(monkeypatch):
    """Records every host read of a tensor that requires grad: the cause of torch's warning
    "Converting a tensor with requires_grad=True to a scalar" (which torch prints once per
    process, so catching the warning itself would depend on the test order)."""
    reads = []
    for method in ("__float__", "__int__", "__bool__", "item", "tolist"):
        original = getattr(torch.Tensor, method)

        def wrapper(self, *args, _original=original, _method=method, **kwargs):
            if self.requires_grad:
                reads.append(_method)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, method, wrapper)
    return reads


@pytest.mark.parametrize("loss_cls", [EqualizedFocalLoss, EqualizedQualityFocalLoss])
def test_normalizer_that_requires_grad_is_detached_without_scalar_conversion(loss_cls, scalar_reads_of_grad_tensors):
    normalizer = torch.tensor(3.0, requires_grad=True)
    logits = torch.randn(6, C, requires_grad=True)
    labels, scores = torch.tensor([0, 1, 2, 3, 4, 4]), torch.rand(6)
    args = (scores,) if loss_cls is EqualizedQualityFocalLoss else ()
    value = loss_cls(C)(logits, labels, *args, normalizer)
    value.backward()
    assert scalar_reads_of_grad_tensors == []
    assert normalizer.grad is None and logits.grad is not None
    torch.testing.assert_close(value, loss_cls(C)(logits, labels, *args, 3.0))


@pytest.mark.parametrize("loss_cls", [EqualizedFocalLoss, EqualizedQualityFocalLoss])
def test_non_finite_logits_that_require_grad_raise_without_scalar_conversion(loss_cls, scalar_reads_of_grad_tensors):
    # The error message quotes the loss: it must not convert a tensor that requires grad.
    logits = torch.randn(5, C)
    logits[0, 0] = float("nan")
    logits.requires_grad_()
    labels, scores = torch.tensor([0, 1, 2, 3, 4]), torch.rand(5)
    args = (scores,) if loss_cls is EqualizedQualityFocalLoss else ()
    with pytest.raises(FloatingPointError, match="the loss is nan"):
        loss_cls(C)(logits, labels, *args, 1.0)
    assert scalar_reads_of_grad_tensors == []


@pytest.mark.parametrize("normalizer", [torch.tensor(0.0), torch.tensor(-2.0), torch.tensor(float("inf"))])
def test_bad_tensor_normalizer_raises_and_keeps_statistics(normalizer):
    # A tensor normalizer on the logits' device is checked after the pass, with the loss.
    loss, before = trained(EqualizedQualityFocalLoss(C))
    with pytest.raises(ValueError, match="normalizer must be a finite number > 0"):
        loss(torch.randn(5, C), torch.tensor([0, 1, 2, 3, 4]), torch.rand(5), normalizer)
    assert_unchanged(loss, before)


def test_empty_batch_is_a_zero_loss_and_adds_nothing_to_the_statistics():
    loss, before = trained(EqualizedQualityFocalLoss(C))
    value = loss(torch.zeros(0, C), torch.zeros(0, dtype=torch.long), torch.zeros(0), torch.tensor(1.0))
    assert value == 0
    assert_unchanged(loss, before)
