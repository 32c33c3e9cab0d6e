"""Mixed-precision training on CUDA (docs/method.md: the statistics are |∂L/∂x| of the loss, in
fp32, never loss-scaled): a few iterations of the tiny improved baseline and of the nano YOLOX-IP
with the trainer efl.engine.build_trainer picks for ``train.amp.enabled=True`` (Detectron2's
AMPTrainer, fp16 autocast, a GradScaler) and the project's gradient clipping.

The reference runs in lockstep: before every step a copy of the model, in fp32 and outside
autocast, runs the forward of the same weights on the same batch; the statistics the AMP step adds
must be the ones that fp32 forward adds, within fp16's rounding (STATS_RTOL), whatever
the loss scale (2^16 by default, 2^60 to force an overflow). A hook-based collector would be off by
the scale itself (≥ 2^16), and would add inf on an overflow step.

The AMP tests also run on the CPU (``amp_device="cpu"``) with CPU stand-ins for what Detectron2's
AMPTrainer takes from ``torch.cuda.amp``: fp16 ``torch.autocast("cpu")`` and a CPU GradScaler. That
checks the project's side (trainer choice, clipping under the scaler, the statistics under fp16
and a loss scale, the overflow skip) on any machine; the CUDA runs check CUDA's kernels."""
import copy

import pytest
import torch.cuda.amp
import torch
from detectron2.engine import AMPTrainer, HookBase, SimpleTrainer

from efl.engine import add_full_model_gradient_clipping, build_trainer
from efl.losses import find_equalized_losses

from .cuda import devices
from .tiny_detectors import FAMILIES, build_detector, training_batch

BUFFERS = ("pos_grad", "neg_grad")
# fp16 logits vs fp32 logits of the same weights. Measured with CPU fp16 autocast standing in for
# CUDA's (AMPTrainer's autocast and scaler swapped for the CPU ones, 4 steps): pos_grad within 4e-4,
# neg_grad within 2e-3 (improved baseline) and 4.3e-2 (nano YOLOX-IP, whose logits sit at its prior
# −6.9, where a negative's |∂L/∂x| ~ p^(γ+1) is most sensitive to fp16 arithmetic). A loss scale
# would show as a factor ≥ 2^16, an overflowed gradient as inf.
STATS_RTOL = 0.1


def equalized_loss(model):
    (_, loss), = find_equalized_losses(model)
    return loss


def buffers(loss):
    return {name: getattr(loss, name).detach().clone() for name in BUFFERS}


class LockstepFp32Reference(HookBase):
    """Per step: the statistics added by the trainer's step (``added``) and those the fp32
    forward of a copy of the model, taken just before the step, adds (``expected``)."""

    def __init__(self, batch):
        self.batch = batch
        self.added, self.expected, self.logits_dtypes = [], [], set()

    def before_train(self):
        loss = equalized_loss(self.trainer.model)
        loss.register_forward_pre_hook(lambda _, args: self.logits_dtypes.add(args[0].dtype))

    def before_step(self):
        twin = copy.deepcopy(self.trainer.model)
        twin_loss = equalized_loss(twin)
        twin_loss._forward_pre_hooks.clear()
        before = buffers(twin_loss)
        with torch.autocast(device_type=self.batch[0]["image"].device.type, enabled=False), torch.no_grad():
            twin(self.batch)
        self.expected.append({k: v - before[k] for k, v in buffers(twin_loss).items()})
        self._before = buffers(equalized_loss(self.trainer.model))

    def after_step(self):
        after = buffers(equalized_loss(self.trainer.model))
        self.added.append({k: v - self._before[k] for k, v in after.items()})


def train_steps(family, tiny_cfg, device, steps, *, amp, init_scale=None):
    """``steps`` iterations on the fixed batch; returns (trainer, reference hook, initial weights)."""
    model = build_detector(family, tiny_cfg, device)
    batch = [dict(d, image=d["image"].to(device)) for d in training_batch(tiny_cfg)]
    optimizer = add_full_model_gradient_clipping(
        torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), max_norm=35.0)
    trainer = build_trainer(model, [batch] * steps, optimizer, amp_enabled=amp)
    if init_scale is not None:
        trainer.grad_scaler = torch.amp.GradScaler(device, init_scale=init_scale)
    reference = LockstepFp32Reference(batch)
    trainer.register_hooks([reference])
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    trainer.train(0, steps)
    return trainer, reference, initial


@pytest.fixture(params=devices())
def amp_device(request, monkeypatch, one_thread):
    """``"cuda"``, or ``"cpu"`` with AMPTrainer's CUDA autocast and GradScaler replaced by the CPU ones
    (fp16), its CUDA assertion satisfied, and build_trainer allowed to pick it on the CPU."""
    if request.param == "cpu":
        monkeypatch.setattr("efl.engine.trainers.amp_trainer_requires_cuda", lambda: False)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # AMPTrainer.run_step asserts it
        monkeypatch.setattr(torch.cuda.amp, "autocast", lambda: torch.autocast("cpu", dtype=torch.float16))
        monkeypatch.setattr(torch.cuda.amp, "GradScaler", lambda **kwargs: torch.amp.GradScaler("cpu", **kwargs))
    return request.param


def assert_statistics_match(reference, rtol):
    assert len(reference.added) == len(reference.expected) > 0
    for step, (added, expected) in enumerate(zip(reference.added, reference.expected)):
        for name in BUFFERS:
            assert torch.isfinite(added[name]).all(), (step, name)
            # atol 0: the negative sums are ~1e-8 per class at the classifier's prior; a class
            # without a positive in the batch adds an exact 0 to pos_grad on both sides
            torch.testing.assert_close(added[name], expected[name], rtol=rtol, atol=0,
                                       msg=lambda m: f"step {step}, {name}: {m}")


@pytest.mark.parametrize("family", FAMILIES)
def test_an_fp32_step_adds_the_statistics_of_its_forward_on_cpu(family, tiny_cfg, one_thread):
    """The lockstep reference on the CPU, fp32 on both sides: it must agree to float rounding
    (this is what the tests below compare AMP against)."""
    trainer, reference, _ = train_steps(family, tiny_cfg, "cpu", 2, amp=False)
    assert type(trainer) is SimpleTrainer and reference.logits_dtypes == {torch.float32}
    assert_statistics_match(reference, rtol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_amp_statistics_are_the_fp32_statistics_whatever_the_loss_scale(family, tiny_cfg, amp_device):
    # 10 steps: at the default scale 2^16 the nano YOLOX-IP's first ~5 steps overflow and are
    # skipped while the scaler backs off (seen with CPU fp16 autocast); its statistics are
    # checked on those steps too.
    trainer, reference, _ = train_steps(family, tiny_cfg, amp_device, 10, amp=True)
    assert isinstance(trainer, AMPTrainer)
    assert reference.logits_dtypes == {torch.float16}, "the head ran under fp16 autocast"
    assert trainer.grad_scaler.get_scale() >= 2.0 ** 8  # the loss really was scaled
    assert_statistics_match(reference, rtol=STATS_RTOL)
    # Clipping runs inside the optimizer's step, on the unscaled gradients: grad_norm is of the
    # size of an fp32 run's, not 2^16 times it. Skipped steps change no weight, so the first
    # recorded norm is that of the initial weights, as the fp32 run's first.
    assert "grad_norm" in trainer.storage.histories(), "every step overflowed"
    norms = [v for v, _ in trainer.storage.history("grad_norm").values()]
    fp32_trainer, _, _ = train_steps(family, tiny_cfg, amp_device, 1, amp=False)
    fp32_norm = fp32_trainer.storage.history("grad_norm").values()[0][0]
    assert norms and norms[0] == pytest.approx(fp32_norm, rel=0.1)


@pytest.mark.parametrize("family", FAMILIES)
def test_an_overflow_step_is_skipped_and_adds_the_statistics_of_its_forward(family, tiny_cfg, amp_device):
    """A loss scale of 2^60 overflows fp16 gradients: the GradScaler skips the weight update and
    halves the scale; the statistics still add exactly what the forward measured (finite, the
    same as an fp32 forward and as an AMP step at a modest scale from the same weights)."""
    trainer, reference, initial = train_steps(family, tiny_cfg, amp_device, 1, amp=True, init_scale=2.0 ** 60)
    assert trainer.grad_scaler.get_scale() == 2.0 ** 59, "the step overflowed and was skipped"
    for name, param in trainer.model.named_parameters():
        assert torch.equal(param.detach(), initial[name]), f"{name} changed on a skipped step"
    assert_statistics_match(reference, rtol=STATS_RTOL)

    _, modest, _ = train_steps(family, tiny_cfg, amp_device, 1, amp=True, init_scale=2.0 ** 4)
    for name in BUFFERS:
        torch.testing.assert_close(reference.added[0][name], modest.added[0][name], rtol=1e-4, atol=0)
