"""Exponential moving average of the model for YOLOX-IP training (docs/yolox_training.md).

After every iteration t = 0, 1, ... (Detectron2's ``trainer.iter``), every floating-point entry
v of the model's state_dict (parameters and buffers: BN statistics and the EFL statistics too)
updates its average e:

    e <- d(t) * e + (1 - d(t)) * v,    d(t) = decay * (1 - exp(-t / tau)),   decay 0.9998, tau 2000

as the reference's "exp" EMA, which is called with the 0-based iteration: d(0) = 0, so the first
update copies the weights. Evaluation uses the averaged weights; they are saved in checkpoints
under "ema" and `--resume` continues the average exactly (the decay depends only on t).

Wiring in a training script (``efl.engine.defaults.do_train``, which reads ``train.ema``;
docs/yolox_training.md), the EMA hook
before the checkpointer and the evaluation so that both see this step's average::

    hooks, evaluation_weights = ema_hooks(model, checkpointer, decay=0.9998, tau=2000.0)
    trainer.register_hooks([..., LRScheduler(...), *hooks, ..., PeriodicCheckpointer(...),
                            EvalHook(period, test_with_ema), ...])
    # where test_with_ema() runs `with evaluation_weights(): return do_test(cfg, model)`
"""
import contextlib
import logging
import math

import torch
from detectron2.engine import HookBase
from detectron2.utils import comm
from torch.nn.modules.batchnorm import _BatchNorm

from ..utils.distributed import all_reduce_sum_, unwrap_model

__all__ = ["ModelEMA", "EMAHook", "average_bn_statistics", "ema_hooks"]

logger = logging.getLogger(__name__)


def _bn_statistics_names(model):
    names = []
    for prefix, module in unwrap_model(model).named_modules():
        if isinstance(module, _BatchNorm) and module.track_running_stats:
            dot = f"{prefix}." if prefix else ""
            names += [f"{dot}running_mean", f"{dot}running_var"]
    return names


def _all_reduce_mean(tensors):
    world_size = comm.get_world_size()
    for t in tensors:
        all_reduce_sum_(t).div_(world_size)


def average_bn_statistics(model):
    """Average the BN running statistics over processes, in place (the reference does it before
    every evaluation: each process's BN layers saw only its own images). No-op in one process."""
    state = unwrap_model(model).state_dict()
    _all_reduce_mean([state[name] for name in _bn_statistics_names(model)])


class ModelEMA:
    """
    The moving average of a model's floating-point state (a dict keyed like its state_dict).

    Its ``state_dict``/``load_state_dict`` make it a checkpointable for fvcore's Checkpointer.
    The average lives on the model's device. Until the first update or load it is not valid: it
    is not saved, and `apply_to` leaves the model as it is.
    """

    def __init__(self, model, *, decay=0.9998, tau=2000.0):
        """
        Args:
            model: the trained model (a DistributedDataParallel wrapper is looked through).
            decay: the asymptotic decay.
            tau: the warm-up time constant, in iterations.
        """
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        if not tau > 0:
            raise ValueError(f"EMA tau must be positive, got {tau}")
        self.decay = float(decay)
        self.tau = float(tau)
        state = unwrap_model(model).state_dict()
        self.names = [k for k, v in state.items() if v.is_floating_point()]
        self.bn_statistics_names = _bn_statistics_names(model)
        # {name: tensor} on the model's device; valid after the first update or load
        self.shadow = {name: state[name].detach().clone() for name in self.names}
        self.valid = False
        self.last_iter = -1

    def decay_at(self, iteration):
        """d(t) = decay * (1 - exp(-t / tau))."""
        return self.decay * (1.0 - math.exp(-iteration / self.tau))

    @torch.no_grad()
    def update(self, model, iteration):
        """Fold in the model's current state after iteration ``iteration`` (0-based)."""
        state = unwrap_model(model).state_dict()
        current = [state[name] for name in self.names]
        # d(0) = 0 makes the first update a copy; a first update at t > 0 (an EMA added to a
        # resumed run) starts from the current weights too
        d = self.decay_at(iteration) if self.valid else 0.0
        for name, v in zip(self.names, current):
            # e * d + (1 - d) * v, in the reference's order of operations
            self.shadow[name].mul_(d).add_((1.0 - d) * v)
        self.valid = True
        self.last_iter = int(iteration)

    def average_bn_statistics(self):
        """`average_bn_statistics` for the averaged BN statistics."""
        if self.valid:
            _all_reduce_mean([self.shadow[name] for name in self.bn_statistics_names])

    @contextlib.contextmanager
    def apply_to(self, model):
        """Within the block the model holds the averaged weights; afterwards exactly its own."""
        if not self.valid:
            logger.warning("The EMA has no weights yet (no update and no 'ema' in the checkpoint): "
                           "using the model's own weights")
            yield model
            return
        state = unwrap_model(model).state_dict()
        backup = {name: state[name].clone() for name in self.names}
        with torch.no_grad():
            for name in self.names:
                state[name].copy_(self.shadow[name])
        try:
            yield model
        finally:
            with torch.no_grad():
                for name in self.names:
                    state[name].copy_(backup[name])

    def state_dict(self):
        if not self.valid:
            return {}
        return {"shadow": dict(self.shadow), "last_iter": self.last_iter, "decay": self.decay, "tau": self.tau}

    def load_state_dict(self, state):
        if not state:
            return
        shadow = state["shadow"]
        missing = [n for n in self.names if n not in shadow]
        if missing:
            raise KeyError(f"the checkpoint's 'ema' lacks {len(missing)} entries of the model, e.g. "
                           f"{missing[:3]}")
        with torch.no_grad():
            for n in self.names:
                self.shadow[n].copy_(shadow[n])  # to the model's device
        self.valid = True
        self.last_iter = int(state.get("last_iter", -1))


class EMAHook(HookBase):
    """
    Updates a `ModelEMA` after every step, with the trainer's iteration. Register it before the
    checkpointer and evaluation hooks, so that they see this step's average. In several processes
    `efl.engine.buffer_sync.BufferSyncHook` (after this one) averages the BN statistics of the
    model and of the EMA before each checkpoint and evaluation.
    """

    def __init__(self, ema, model):
        """
        Args:
            ema: the `ModelEMA`.
            model: the trained model.
        """
        self.ema = ema
        self.model = model

    def after_step(self):
        self.ema.update(self.model, self.trainer.iter)


def ema_hooks(model, checkpointer, *, decay, tau):
    """
    A `ModelEMA` of ``model`` (``efl.engine.defaults.build_ema_hooks`` reads ``train.ema``).

    Registers it with ``checkpointer`` as checkpointable "ema" (saved in every checkpoint, loaded
    by ``resume_or_load(resume=True)`` and by ``checkpointer.load(path)``; note that
    ``resume_or_load(path, resume=False)`` loads no checkpointable, so ``--eval-only`` should use
    ``checkpointer.load``).

    Returns:
        (hooks, evaluation_weights): the hooks to register, and a context manager factory for
        evaluation that swaps the EMA weights in for the block. In training,
        `efl.engine.buffer_sync.BufferSyncHook` gives every process the same model and EMA state
        before evaluating; an evaluation of a loaded checkpoint has it by construction.
    """
    ema = ModelEMA(model, decay=decay, tau=tau)
    checkpointer.add_checkpointable("ema", ema)

    @contextlib.contextmanager
    def evaluation_weights():
        with ema.apply_to(model):
            yield

    return [EMAHook(ema, model)], evaluation_weights
