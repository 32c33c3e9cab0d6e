"""EFL and EQFL on CUDA: value, gradient and statistics against torch.autograd of the formulas
(tests/losses/reference_formulas.py) in float64 on the CPU, against the same loss on the CPU, and
under torch.autocast in float16 / bfloat16. Each body also runs on the CPU (``device="cpu"``),
where it checks the same property; the CUDA runs skip without a device."""
import pytest
import torch

from efl.losses import EqualizedFocalLoss, EqualizedQualityFocalLoss

from ..losses.reference_formulas import eqfl_per_entry, efl_per_entry, one_hot_targets
from ..losses.test_gradients import random_case
from .cuda import devices, requires_cuda

C = 11  # random_case's class count
LOSSES = [EqualizedFocalLoss, EqualizedQualityFocalLoss]


def call(loss, logits, labels, scores, normalizer):
    if isinstance(loss, EqualizedQualityFocalLoss):
        return loss(logits, labels, scores, normalizer)
    return loss(logits, labels, normalizer)


def reference(loss_cls, logits, labels, scores, ratio, normalizer, loss_weight):
    """float64 CPU autograd of the formula: (value, ∂value/∂logits, pos sums, neg sums)."""
    gamma_b, s = 2.0, (8.0 if loss_cls is EqualizedFocalLoss else 4.0)
    gamma = (gamma_b + s * (1 - ratio.float())).double()  # from the float32 buffer, as the loss
    weight = gamma / gamma_b
    x = logits.detach().cpu().double().requires_grad_()
    targets = one_hot_targets(labels.cpu(), C, torch.float64)
    if loss_cls is EqualizedFocalLoss:
        per_entry = efl_per_entry(x, targets, gamma, weight, 0.25)
    else:
        per_entry = eqfl_per_entry(x, targets, scores.detach().cpu().double(), gamma, weight)
    value = per_entry.sum() * loss_weight / normalizer
    (grad,) = torch.autograd.grad(value, x)
    return value.detach(), grad, (grad.abs() * targets).sum(0), (grad.abs() * (1 - targets)).sum(0)


def loss_with_ratio(loss_cls, ratio, device, chunk_entries=None):
    loss = loss_cls(C, loss_weight=1.7).to(device)
    loss.pos_neg.copy_(ratio)
    loss.chunk_entries = chunk_entries
    return loss


@pytest.mark.parametrize("chunk_entries", [None, 5 * C], ids=["default_chunks", "small_chunks"])
@pytest.mark.parametrize("loss_cls", LOSSES)
@pytest.mark.parametrize("device", devices())
def test_float32_value_gradient_and_statistics_on_device_equal_float64_autograd(device, loss_cls, chunk_entries):
    logits64, labels, scores64, ratio = random_case(0)
    logits = logits64.float().to(device).requires_grad_()
    labels, scores = labels.to(device), scores64.float().to(device)
    normalizer = torch.tensor(13.5, device=device)  # a device tensor, as the detectors pass it
    loss = loss_with_ratio(loss_cls, ratio, device, chunk_entries)

    value = call(loss, logits, labels, scores, normalizer)
    value.backward()
    expected, expected_grad, expected_pos, expected_neg = reference(
        loss_cls, logits, labels, scores, ratio, 13.5, 1.7)

    assert value.dtype == torch.float32 and value.device.type == device
    torch.testing.assert_close(value.cpu().double(), expected, rtol=1e-5, atol=0)
    torch.testing.assert_close(logits.grad.cpu().double(), expected_grad, rtol=1e-4, atol=1e-6)
    assert loss.pos_grad.device.type == device
    torch.testing.assert_close(loss.pos_grad.cpu().double(), expected_pos, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(loss.neg_grad.cpu().double(), expected_neg, rtol=1e-4, atol=1e-7)


@requires_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("loss_cls", LOSSES)
def test_cuda_loss_follows_the_cpu_loss_over_training_calls(loss_cls):
    """Several training calls: the statistics move, so later calls use per-class γ_j and w_j, on
    both devices alike. LVIS-sized rows (1203 classes, more rows than one default CUDA chunk)."""
    num_classes, num_rows = 1203, 16000
    losses = {d: loss_cls(num_classes).to(d) for d in ("cpu", "cuda")}
    for step in range(3):
        generator = torch.Generator().manual_seed(step)
        logits = torch.randn(num_rows, num_classes, generator=generator) - 4
        labels = torch.full((num_rows,), num_classes)
        positive = torch.rand(num_rows, generator=generator) < 0.02
        labels[positive] = torch.randint(0, 40, (int(positive.sum()),), generator=generator)  # a head
        scores = torch.rand(num_rows, generator=generator)
        values, grads = {}, {}
        for device, loss in losses.items():
            x = logits.to(device).requires_grad_()
            values[device] = call(loss, x, labels.to(device), scores.to(device), torch.tensor(7.0, device=device))
            values[device].backward()
            grads[device] = x.grad.cpu()
        torch.testing.assert_close(values["cuda"].cpu(), values["cpu"], rtol=1e-5, atol=0)
        torch.testing.assert_close(grads["cuda"], grads["cpu"], rtol=1e-4, atol=1e-9)
    for name in ("pos_grad", "neg_grad", "pos_neg"):
        torch.testing.assert_close(getattr(losses["cuda"], name).cpu(), getattr(losses["cpu"], name),
                                   rtol=1e-4, atol=1e-9, msg=name)
    # the head classes had positives, the others none: γ_j is γ_b + s for those after the first call
    assert (losses["cuda"].pos_grad[:40] > 0).all() and (losses["cuda"].pos_neg[40:] == 0).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("loss_cls", LOSSES)
@pytest.mark.parametrize("device", devices())
def test_under_autocast_the_loss_is_the_float32_loss_of_the_half_precision_logits(device, loss_cls, dtype):
    """A head run under torch.autocast gives half-precision logits; the loss (still inside the
    autocast region, as in AMPTrainer) computes in float32: its value and statistics are those of
    the float32 loss of the rounded logits, its gradient that gradient rounded to the logits'
    dtype, and a gradient scale reaches the gradient but never the statistics."""
    logits64, labels, scores64, ratio = random_case(1)
    torch.manual_seed(0)
    head = torch.nn.Linear(C, C).to(device)
    features = logits64.float().to(device)
    labels, scores = labels.to(device), scores64.float().to(device)
    amp_loss = loss_with_ratio(loss_cls, ratio, device, chunk_entries=5 * C)
    fp32_loss = loss_with_ratio(loss_cls, ratio, device, chunk_entries=5 * C)

    with torch.autocast(device_type=device, dtype=dtype):
        logits = head(features)
        logits.retain_grad()
        value = call(amp_loss, logits, labels, scores, 6.0)
    assert logits.dtype == dtype and value.dtype == torch.float32
    (value * 1024.0).backward()  # a GradScaler's scale

    x = logits.detach().float().requires_grad_()
    expected = call(fp32_loss, x, labels, scores, 6.0)
    expected.backward()
    torch.testing.assert_close(value, expected, rtol=1e-6, atol=0)
    assert logits.grad.dtype == dtype
    torch.testing.assert_close(logits.grad.float(), (x.grad * 1024.0).to(dtype).float(), rtol=1e-6, atol=0)
    torch.testing.assert_close(amp_loss.pos_grad, fp32_loss.pos_grad, rtol=1e-6, atol=0)
    torch.testing.assert_close(amp_loss.neg_grad, fp32_loss.neg_grad, rtol=1e-6, atol=0)
    # and the float64 formula of the rounded logits
    _, _, expected_pos, expected_neg = reference(loss_cls, logits, labels, scores, ratio, 6.0, 1.7)
    torch.testing.assert_close(amp_loss.pos_grad.cpu().double(), expected_pos, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(amp_loss.neg_grad.cpu().double(), expected_neg, rtol=1e-4, atol=1e-7)
