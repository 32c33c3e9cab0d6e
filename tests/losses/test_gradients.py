"""The analytic gradient of EFL / EQFL against torch.autograd of a direct transcription of the
formulas, and the g = 1 special cases against fvcore's focal loss and a QFL transcription."""
import pytest
import torch
from fvcore.nn import sigmoid_focal_loss

from efl.losses import EqualizedFocalLoss, EqualizedQualityFocalLoss

from .reference_formulas import eqfl_per_entry, efl_per_entry, one_hot_targets, qfl_per_entry

NUM_CLASSES = 11


def random_case(seed, num_rows=257, num_classes=NUM_CLASSES, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(num_rows, num_classes, generator=generator, dtype=dtype) * 3
    # Extreme logits on a few positive and negative entries.
    logits[:4, :3] = torch.tensor([30.0, -30.0, 15.0], dtype=dtype)
    labels = torch.randint(0, num_classes + 1, (num_rows,), generator=generator)
    labels[:2] = 0  # positives of class 0 at logit +30 and ... the row of logit −30 on class 1
    labels[2:4] = 1
    scores = torch.rand(num_rows, generator=generator, dtype=dtype)
    scores[:6] = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0], dtype=dtype)
    ratio = torch.rand(num_classes, generator=generator)
    ratio[0], ratio[1] = 1.0, 0.0
    return logits, labels, scores, ratio


def with_ratio(loss, ratio):
    loss.pos_neg.copy_(ratio)
    loss.eval()  # these tests check values and gradients; statistics are tested elsewhere
    loss.chunk_entries = 5 * NUM_CLASSES  # several chunks, with positives on their borders
    return loss


@pytest.mark.parametrize("alpha", [0.25, None])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_efl_analytic_gradient_equals_autograd_of_formula(seed, alpha):
    logits, labels, _, ratio = random_case(seed)
    efl = with_ratio(EqualizedFocalLoss(NUM_CLASSES, gamma_b=2.0, scale_factor=8.0,
                                        alpha=alpha if alpha is not None else -1, loss_weight=1.7), ratio)
    normalizer = 13.5

    x = logits.clone().requires_grad_()
    value = efl(x, labels, normalizer)
    (grad,) = torch.autograd.grad(value, x)

    # γ_j and w_j come from float32 buffers (the contract): form them in float32 here too.
    gamma = (2.0 + 8.0 * (1 - ratio)).double()
    weight = ((2.0 + 8.0 * (1 - ratio)) / 2.0).double()
    x_ref = logits.clone().requires_grad_()
    targets = one_hot_targets(labels, NUM_CLASSES, torch.float64)
    per_entry = efl_per_entry(x_ref, targets, gamma, weight, alpha if alpha is not None else 0.5)
    if alpha is None:
        per_entry = per_entry * 2  # α_t = 0.5 everywhere, undone: no α at all
    expected = per_entry.sum() * 1.7 / normalizer
    (expected_grad,) = torch.autograd.grad(expected, x_ref)

    torch.testing.assert_close(value, expected, rtol=1e-12, atol=0)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_eqfl_analytic_gradient_equals_autograd_of_formula(seed):
    logits, labels, scores, ratio = random_case(seed)
    eqfl = with_ratio(EqualizedQualityFocalLoss(NUM_CLASSES, gamma_b=2.0, scale_factor=4.0,
                                                loss_weight=0.6), ratio)
    normalizer = 7.0

    x = logits.clone().requires_grad_()
    value = eqfl(x, labels, scores, normalizer)
    (grad,) = torch.autograd.grad(value, x)

    gamma = (2.0 + 4.0 * (1 - ratio)).double()
    weight = ((2.0 + 4.0 * (1 - ratio)) / 2.0).double()
    x_ref = logits.clone().requires_grad_()
    targets = one_hot_targets(labels, NUM_CLASSES, torch.float64)
    expected = eqfl_per_entry(x_ref, targets, scores, gamma, weight).sum() * 0.6 / normalizer
    (expected_grad,) = torch.autograd.grad(expected, x_ref)

    torch.testing.assert_close(value, expected, rtol=1e-12, atol=0)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-9, atol=1e-13)


def test_eqfl_positive_with_score_zero_equals_negative_entry():
    # docs/method.md §4: with q = 0 the positive formula coincides with the negative one.
    logits = torch.tensor([[-3.0, 0.5], [2.0, -1.0]], dtype=torch.float64, requires_grad=True)
    eqfl = EqualizedQualityFocalLoss(2).eval()
    as_positive = eqfl(logits, torch.tensor([0, 1]), torch.tensor([0.0, 0.0], dtype=torch.float64), 1.0)
    grad_positive = torch.autograd.grad(as_positive, logits)[0]
    as_negative = eqfl(logits, torch.tensor([2, 2]), torch.zeros(2, dtype=torch.float64), 1.0)
    grad_negative = torch.autograd.grad(as_negative, logits)[0]
    torch.testing.assert_close(as_positive, as_negative)
    torch.testing.assert_close(grad_positive, grad_negative, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_efl_equals_fvcore_focal_loss_when_ratio_is_one(dtype):
    logits, labels, _, _ = random_case(3, dtype=dtype)
    efl = EqualizedFocalLoss(NUM_CLASSES, gamma_b=2.0, scale_factor=8.0, alpha=0.25).eval()
    x = logits.clone().requires_grad_()
    value = efl(x, labels, 9.0)
    (grad,) = torch.autograd.grad(value, x)

    x_ref = logits.clone().requires_grad_()
    targets = one_hot_targets(labels, NUM_CLASSES, dtype)
    expected = sigmoid_focal_loss(x_ref, targets, alpha=0.25, gamma=2.0, reduction="sum") / 9.0
    (expected_grad,) = torch.autograd.grad(expected, x_ref)
    # fvcore casts its inputs to float32 whatever their dtype: compare at float32 precision.
    torch.testing.assert_close(value.float(), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, expected_grad.to(dtype), rtol=1e-5, atol=1e-6)


def test_focal_baseline_scale_factor_zero_stays_focal_loss_after_statistics():
    # scale_factor = 0 is the focal-loss baseline: whatever g_j becomes, γ_j = γ_b and w_j = 1.
    logits, labels, _, _ = random_case(4)
    focal = EqualizedFocalLoss(NUM_CLASSES, scale_factor=0.0)
    for _ in range(2):
        focal(logits, labels, 5.0)  # training mode: statistics move
    assert (focal.pos_neg < 1).any()
    focal.eval()
    expected = sigmoid_focal_loss(logits, one_hot_targets(labels, NUM_CLASSES, torch.float64),
                                  alpha=0.25, gamma=2.0, reduction="sum") / 5.0
    torch.testing.assert_close(focal(logits, labels, 5.0).float(), expected, rtol=1e-5, atol=0)


def test_eqfl_equals_qfl_when_ratio_is_one():
    logits, labels, scores, _ = random_case(5)
    eqfl = EqualizedQualityFocalLoss(NUM_CLASSES, gamma_b=2.0, scale_factor=4.0).eval()
    x = logits.clone().requires_grad_()
    value = eqfl(x, labels, scores, 3.0)
    (grad,) = torch.autograd.grad(value, x)
    x_ref = logits.clone().requires_grad_()
    expected = qfl_per_entry(x_ref, one_hot_targets(labels, NUM_CLASSES, torch.float64), scores).sum() / 3.0
    (expected_grad,) = torch.autograd.grad(expected, x_ref)
    torch.testing.assert_close(value, expected, rtol=1e-12, atol=0)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("loss_cls", [EqualizedFocalLoss, EqualizedQualityFocalLoss])
def test_losses_are_finite_for_logits_of_plus_minus_100(loss_cls):
    # ±100 in fp32: σ rounds to exactly 0 or 1, so a plain log(σ) would give inf (docs/method.md §6.3).
    logits = torch.tensor([[100.0, -100.0, 100.0], [-100.0, 100.0, -100.0]], requires_grad=True)
    labels = torch.tensor([0, 3])  # one positive at +100, one background row
    scores = torch.tensor([1.0, 0.0])
    loss = loss_cls(3)
    value = loss(logits, labels, 1.0) if loss_cls is EqualizedFocalLoss else loss(logits, labels, scores, 1.0)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()
    # A negative at +100 costs about (1 − α)·100 (EFL) or 100 (EQFL): log(1 + e^100) ≈ 100.
    per_negative = 75.0 if loss_cls is EqualizedFocalLoss else 100.0
    assert value.item() == pytest.approx(2 * per_negative, rel=1e-4)
