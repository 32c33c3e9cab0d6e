"""A training hook that checks, per class, the identity between an equalized loss's statistics
and the SGD trajectory of the classification bias (docs/method.md §8).

The gradient of the classification bias of class j (anchor a) is the signed sum over locations
of the same per-entry gradients whose absolute values the loss accumulates: negatives push the
bias down (positive gradient), positives up. Torch's SGD with momentum m, weight decay lambda and
learning rate lr_t applies d_t = c_t g_t + lambda b_t (c_t <= 1: the gradient-clipping factor),
v_t = m v_{t-1} + d_t and b_{t+1} = b_t - lr_t v_t (Nesterov: b_t - lr_t (d_t + m v_t)). Summed over
the run and over anchors, for one process:

    N_j - P_j = sum_t g_t = D_j - lambda sum_t b_j(t) + K_j

    D_j = sum_t (v_t - m v_{t-1})          the displacement term: (1 - m) sum_t (b_t - b_{t+1}) / lr_t
                                           + m v_{T-1} without Nesterov
    -lambda sum_t b_j(t)                   the weight-decay pull, lambda sum_t |b_j(t)| for b < 0
    K_j = sum_t (1/c_t - 1)(d_t - lambda b_t)   what clipping removed (0 when it never clips)

plus S_j, the statistics of steps the optimizer skipped (AMP's GradScaler on an overflow): the loss
counted their gradient, SGD never applied it.

With W processes the statistics sum the W local gradients while DDP averages them, so the left
side is divided by W. The hook accumulates each term in float64 and writes them, with the
residual, to ``<output_dir>/bias_ledger.json``; ``tools/bias_identity.py`` tabulates and plots it.
The sums are not checkpointed: after ``--resume`` the ledger covers the iterations from the resumed
one on (``start_iter``), its statistics counted from their values there.
"""
import json
import logging
import os

import torch
from detectron2.engine import HookBase
from detectron2.utils import comm

from ..utils.files import atomic_write
from .bias_decay import classifier_biases

__all__ = ["BIAS_LEDGER_FILE", "ClassifierBiasLedger"]

logger = logging.getLogger(__name__)

BIAS_LEDGER_FILE = "bias_ledger.json"


class ClassifierBiasLedger(HookBase):
    """Accumulates the terms of the bias identity (module docstring) over a training run."""

    def __init__(self, model, optimizer, loss, *, output_dir, clip_max_norm=None):
        """
        Args:
            model: the trained model (may be wrapped in DDP); its classification biases are found
                by name (:data:`efl.engine.bias_decay.CLASSIFIER_BIAS`).
            optimizer: the ``torch.optim.SGD`` that trains them.
            loss: the model's equalized loss module (``pos_grad``/``neg_grad`` buffers, C classes).
            output_dir: where ``bias_ledger.json`` goes at the end of training.
            clip_max_norm: the whole-model gradient clipping norm, None when not clipping; the
                clipping factor of each step is read from the ``grad_norm`` the clipper logs.
        """
        self._biases = classifier_biases(model)
        if not self._biases:
            raise ValueError("ClassifierBiasLedger: the model has no classification bias matching "
                             "efl.engine.bias_decay.CLASSIFIER_BIAS")
        self._optimizer = optimizer
        self._loss = loss
        self._num_classes = int(loss.num_classes)
        for name, p in self._biases:
            if p.numel() % self._num_classes:
                raise ValueError(f"{name} has {p.numel()} entries, not a multiple of the loss's "
                                 f"{self._num_classes} classes")
        self._groups = [self._group_of(p) for _, p in self._biases]
        self._output_dir = output_dir
        self._clip_max_norm = clip_max_norm
        self._world_size = comm.get_world_size()
        self._totals = None

    def _group_of(self, param):
        for group in self._optimizer.param_groups:
            if any(p is param for p in group["params"]):
                if group.get("dampening", 0) != 0:
                    raise ValueError("ClassifierBiasLedger: SGD dampening is not supported")
                return group
        raise ValueError("ClassifierBiasLedger: a classification bias is not in the optimizer")

    def _per_class(self, flat):
        """(A * C,) anchor-major entries of one bias -> (C,) sums over anchors, float64."""
        return flat.detach().double().view(-1, self._num_classes).sum(0)

    def _statistics(self):
        return (self._loss.pos_grad.detach().double().clone(),
                self._loss.neg_grad.detach().double().clone())

    def before_train(self):
        device = self._loss.pos_grad.device
        terms = ("displacement", "displacement_trajectory", "weight_decay_pull", "clipped", "skipped")
        self._totals = {k: torch.zeros(self._num_classes, dtype=torch.float64, device=device) for k in terms}
        self._start_stats = self._statistics()
        self._start_bias = sum(self._per_class(p) for _, p in self._biases)
        # v_{t-1} of the first step: 0 in a new run, the optimizer's buffer after --resume
        self._previous_velocity = []
        for _, p in self._biases:
            buffer = self._momentum_buffer(p)
            self._previous_velocity.append(torch.zeros_like(p, dtype=torch.float64) if buffer is None else buffer)
        self._previous_trajectory_velocity = [v.clone() for v in self._previous_velocity]
        self._start_iter = None
        self._steps = 0
        self._clipped_steps = 0
        self._skipped_steps = 0

    def before_step(self):
        if self._start_iter is None:
            self._start_iter = self.trainer.iter
        self._bias_before = [p.detach().double().clone() for _, p in self._biases]
        self._lr_before = [float(g["lr"]) for g in self._groups]
        self._stats_before = self._statistics()

    def _momentum_buffer(self, param):
        buffer = self._optimizer.state.get(param, {}).get("momentum_buffer")
        return None if buffer is None else buffer.detach().double().clone()

    def _skipped(self):
        """True when the optimizer did not step (an AMP overflow): no bias and no momentum buffer
        changed (the buffer's last value is the previous step's velocity)."""
        for (_, p), b_before, v_before in zip(self._biases, self._bias_before, self._previous_velocity):
            v_after = self._momentum_buffer(p)
            if not torch.equal(p.detach().double(), b_before) or (
                    v_after is not None and not torch.equal(v_after, v_before)):
                return False
        return True

    def _clip_factor(self):
        if not self._clip_max_norm:
            return 1.0
        norm = self.trainer.storage.history("grad_norm").latest()
        # torch.nn.utils.clip_grad_norm_ scales by max_norm / (norm + 1e-6) when that is < 1
        return min(1.0, self._clip_max_norm / (norm + 1e-6))

    def after_step(self):
        self._steps += 1
        if self._skipped():
            self._skipped_steps += 1
            pos, neg = self._statistics()
            self._totals["skipped"] += ((neg - self._stats_before[1]) - (pos - self._stats_before[0])) / self._world_size
            return
        clip = self._clip_factor()
        self._clipped_steps += clip < 1.0
        for i, ((_, p), group) in enumerate(zip(self._biases, self._groups)):
            b_before, b_after, lr = self._bias_before[i], p.detach().double(), self._lr_before[i]
            m, wd = float(group.get("momentum", 0.0)), float(group.get("weight_decay", 0.0))
            nesterov = bool(group.get("nesterov", False))
            buffer = self._momentum_buffer(p)
            # d_t from the optimizer's momentum buffer (exact) ...
            v_prev = self._previous_velocity[i]
            v = buffer if buffer is not None else (b_before - b_after) / lr
            d = v - m * v_prev
            self._previous_velocity[i] = v
            # ... and from the bias's own trajectory (the step is lr_t v_t, or lr_t (d_t + m v_t)
            # with Nesterov); they differ by the float32 rounding of b. A step at lr 0 moves
            # nothing: its d_t is known only from the buffer.
            v_prev_traj = self._previous_trajectory_velocity[i]
            if lr > 0:
                step = (b_before - b_after) / lr
                d_traj = ((step - m * m * v_prev_traj) / (1 + m) if nesterov
                          else step - m * v_prev_traj)
            else:
                d_traj = d
            self._previous_trajectory_velocity[i] = m * v_prev_traj + d_traj
            self._totals["displacement"] += self._per_class(d)
            self._totals["displacement_trajectory"] += self._per_class(d_traj)
            self._totals["weight_decay_pull"] += self._per_class(-wd * b_before)
            self._totals["clipped"] += self._per_class((1.0 / clip - 1.0) * (d - wd * b_before))

    def terms(self):
        """``{term: (C,) float64 tensor}`` accumulated so far (module docstring)."""
        pos, neg = self._statistics()
        pos = (pos - self._start_stats[0]) / self._world_size
        neg = (neg - self._start_stats[1]) / self._world_size
        t = self._totals
        predicted = t["displacement"] + t["weight_decay_pull"] + t["clipped"] + t["skipped"]
        return {
            "positive": pos,
            "negative": neg,
            "negative_minus_positive": neg - pos,
            "displacement": t["displacement"],
            "displacement_trajectory": t["displacement_trajectory"],
            "weight_decay_pull": t["weight_decay_pull"],
            "clipped": t["clipped"],
            "skipped": t["skipped"],
            "residual": (neg - pos) - predicted,
            "bias_start": self._start_bias,
            "bias_end": sum(self._per_class(p) for _, p in self._biases),
        }

    def after_train(self):
        if self._totals is None or not comm.is_main_process() or not self._output_dir:
            return
        terms = {k: v.cpu().tolist() for k, v in self.terms().items()}
        group = self._groups[0]
        record = {
            "start_iter": self._start_iter,
            "steps": self._steps,
            "clipped_steps": int(self._clipped_steps),
            "skipped_steps": int(self._skipped_steps),
            "world_size": self._world_size,
            "num_classes": self._num_classes,
            "biases": [name for name, _ in self._biases],
            "anchors_per_class": sum(p.numel() for _, p in self._biases) // self._num_classes,
            "momentum": float(group.get("momentum", 0.0)),
            "nesterov": bool(group.get("nesterov", False)),
            "weight_decay": float(group.get("weight_decay", 0.0)),
            "terms": terms,
        }
        path = os.path.join(self._output_dir, BIAS_LEDGER_FILE)
        os.makedirs(self._output_dir, exist_ok=True)
        atomic_write(path, lambda f: json.dump(record, f), mode="w")
        logger.info(f"Classification-bias ledger of {self._steps} iterations written to {path}")
