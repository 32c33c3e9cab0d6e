"""The per-class gradient statistics: equal to what a backward hook on the logits would collect
from autograd's gradient of the returned loss; untouched in eval mode; carried by the state_dict;
blind to a loss scale; the same for half-precision logits."""
import pytest
import torch

from efl.losses import EqualizedFocalLoss, EqualizedQualityFocalLoss

from .reference_formulas import one_hot_targets

NUM_CLASSES = 9


def batch(seed, num_rows=300, dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(num_rows, NUM_CLASSES, generator=generator, dtype=dtype) * 2 - 2
    # A long tail of labels: class 0 often, the last classes rarely or never; most rows background.
    probs = torch.tensor([0.2, 0.1, 0.05, 0.03, 0.02, 0.01, 0.005, 0.0, 0.0, 0.585])
    labels = torch.multinomial(probs, num_rows, replacement=True, generator=generator)
    scores = torch.rand(num_rows, generator=generator, dtype=dtype)
    return logits, labels, scores


def call(loss, logits, labels, scores, normalizer):
    if isinstance(loss, EqualizedQualityFocalLoss):
        return loss(logits, labels, scores, normalizer)
    return loss(logits, labels, normalizer)


def hook_collected_statistics(loss, batches, normalizers):
    """The reference: run the loss as a hook-based implementation would see it, and sum |∂L/∂x|
    over positive and negative entries of each class from autograd's gradient."""
    pos_sum = torch.zeros(NUM_CLASSES, dtype=torch.float64)
    neg_sum = torch.zeros(NUM_CLASSES, dtype=torch.float64)
    for (logits, labels, scores), normalizer in zip(batches, normalizers):
        x = logits.clone().requires_grad_()
        collected = []
        x.register_hook(lambda grad: collected.append(grad.detach().abs().double()))
        call(loss, x, labels, scores, normalizer).backward()
        (grad,) = collected
        positive = one_hot_targets(labels, NUM_CLASSES, torch.float64)
        pos_sum += (grad * positive).sum(0)
        neg_sum += (grad * (1 - positive)).sum(0)
    return pos_sum, neg_sum


@pytest.mark.parametrize("loss_cls", [EqualizedFocalLoss, EqualizedQualityFocalLoss])
def test_statistics_equal_sums_a_backward_hook_collects(loss_cls):
    batches = [batch(seed) for seed in range(4)]
    normalizers = [17.0, 3.5, torch.tensor(40.0), 9.0]
    loss = loss_cls(NUM_CLASSES, loss_weight=2.5)
    expected_pos, expected_neg = hook_collected_statistics(loss, batches, normalizers)

    torch.testing.assert_close(loss.pos_grad.double(), expected_pos, rtol=1e-5, atol=1e-12)
    torch.testing.assert_close(loss.neg_grad.double(), expected_neg, rtol=1e-5, atol=1e-12)
    expected_ratio = (expected_pos / (expected_neg + 1e-10)).clamp(0, 1)
    torch.testing.assert_close(loss.pos_neg.double(), expected_ratio, rtol=1e-5, atol=1e-7)
    # Classes 7 and 8 never had a positive: their ratio is 0, so they are focused hardest.
    assert loss.pos_neg[7] == 0 and loss.pos_neg[8] == 0
    assert (loss.focusing_factors()[7:] == loss.gamma_b + loss.scale_factor).all()


def test_each_call_uses_the_statistics_from_before_its_update():
    logits, labels, _ = batch(0)
    efl = EqualizedFocalLoss(NUM_CLASSES)
    plain_focal = EqualizedFocalLoss(NUM_CLASSES).eval()  # g = 1 forever
    first = efl(logits, labels, 10.0)
    torch.testing.assert_close(first, plain_focal(logits, labels, 10.0))  # first call: focal loss
    assert (efl.pos_neg < 1).all()
    ratio_before = efl.pos_neg.clone()
    second = efl(logits, labels, 10.0)
    efl_eval = EqualizedFocalLoss(NUM_CLASSES).eval()
    efl_eval.pos_neg.copy_(ratio_before)
    torch.testing.assert_close(second, efl_eval(logits, labels, 10.0))


def test_statistics_ignore_the_loss_scale_of_mixed_precision_training():
    # A GradScaler multiplies the loss before backward; the statistics are those of the loss.
    batches = [batch(seed) for seed in range(2)]
    reference = EqualizedFocalLoss(NUM_CLASSES)
    expected_pos, expected_neg = hook_collected_statistics(reference, batches, [5.0, 5.0])
    scaled = EqualizedFocalLoss(NUM_CLASSES)
    for logits, labels, _ in batches:
        x = logits.clone().requires_grad_()
        (scaled(x, labels, 5.0) * 65536.0).backward()
    torch.testing.assert_close(scaled.pos_grad.double(), expected_pos, rtol=1e-5, atol=1e-12)
    torch.testing.assert_close(scaled.neg_grad.double(), expected_neg, rtol=1e-5, atol=1e-12)


def test_eval_mode_leaves_statistics_untouched():
    logits, labels, scores = batch(1)
    for loss in (EqualizedFocalLoss(NUM_CLASSES), EqualizedQualityFocalLoss(NUM_CLASSES)):
        call(loss, logits, labels, scores, 4.0)
        before = {k: v.clone() for k, v in loss.state_dict().items()}
        loss.eval()
        call(loss, logits.requires_grad_(), labels, scores, 4.0).backward()
        for key, value in loss.state_dict().items():
            assert torch.equal(value, before[key]), key


def test_state_dict_round_trip_restores_statistics_and_loss():
    efl = EqualizedFocalLoss(NUM_CLASSES)
    for seed in range(3):
        logits, labels, _ = batch(seed)
        efl(logits, labels, 8.0)
    state = efl.state_dict()
    assert set(state) == {"pos_grad", "neg_grad", "pos_neg"}
    assert all(v.dtype == torch.float32 and v.shape == (NUM_CLASSES,) for v in state.values())

    restored = EqualizedFocalLoss(NUM_CLASSES)
    restored.load_state_dict(state)
    logits, labels, _ = batch(7)
    efl.eval(), restored.eval()
    assert torch.equal(efl(logits, labels, 8.0), restored(logits, labels, 8.0))
    for key, value in state.items():
        assert torch.equal(restored.state_dict()[key], value)


@pytest.mark.parametrize("dtype, rtol", [(torch.float16, 2e-2), (torch.bfloat16, 1e-1)])
def test_half_precision_logits_give_the_statistics_of_float32_logits(dtype, rtol):
    logits, labels, scores = batch(2)
    for loss_cls in (EqualizedFocalLoss, EqualizedQualityFocalLoss):
        full, half, rounded = loss_cls(NUM_CLASSES), loss_cls(NUM_CLASSES), loss_cls(NUM_CLASSES)
        call(full, logits, labels, scores, 6.0)
        x = logits.to(dtype).requires_grad_()
        value = call(half, x, labels, scores, 6.0)
        value.backward()
        assert value.dtype == torch.float32 and x.grad.dtype == dtype
        # Exactly the fp32 computation on the rounded logits: the loss never works in half precision.
        call(rounded, logits.to(dtype).float(), labels, scores, 6.0)
        torch.testing.assert_close(half.pos_grad, rounded.pos_grad, rtol=1e-6, atol=0)
        torch.testing.assert_close(half.neg_grad, rounded.neg_grad, rtol=1e-6, atol=0)
        # And within the rounding of the logits of the fp32 statistics.
        torch.testing.assert_close(half.pos_grad, full.pos_grad, rtol=rtol, atol=0)
        torch.testing.assert_close(half.neg_grad, full.neg_grad, rtol=rtol, atol=0)


def test_statistics_are_those_of_eager_mode_under_torch_compile():
    # Hook-based collectors see compiled graphs differently; the analytic statistics cannot.
    torch.manual_seed(0)
    head = torch.nn.Linear(6, NUM_CLASSES)
    compiled_loss, eager_loss = EqualizedFocalLoss(NUM_CLASSES), EqualizedFocalLoss(NUM_CLASSES)

    @torch.compile(backend="aot_eager")
    def compiled_step(features, labels):
        return compiled_loss(head(features), labels, 4.0)

    for seed in range(3):
        _, labels, _ = batch(seed, num_rows=64)
        features = torch.randn(64, 6)
        compiled_value = compiled_step(features, labels)
        compiled_value.backward()
        eager_value = eager_loss(head(features).detach(), labels, 4.0)
        torch.testing.assert_close(compiled_value, eager_value)
    torch.testing.assert_close(compiled_loss.pos_neg, eager_loss.pos_neg)
    assert (compiled_loss.pos_neg < 1).any()
