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
