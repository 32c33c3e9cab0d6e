"""What EFL and EQFL share: the per-class gradient statistics, the focusing and weighting factors
derived from them, input validation, and the call into the chunked autograd Function."""
import math
import numbers
from typing import NamedTuple

import torch
from torch import nn

from ..utils.distributed import all_reduce_sum_
from .equalized_sigmoid_function import EqualizedSigmoidLossFunction, default_chunk_entries

__all__ = ["EqualizedLossBase", "find_equalized_losses"]

# Integer dtypes accepted for labels. uint8 and bool are left out on purpose: as an index they are
# a mask, not class ids.
_LABEL_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8)


class _HostReport(NamedTuple):
    """What the one host read of a call brings back, in the order of the device tensor it is read
    from: ``_problems``' flags (1.0 where a problem was found), then the values their messages
    quote, then whether any other process had a problem (training: summed by the all-reduce)."""

    bad_labels: float
    bad_scores: float
    bad_normalizer: float
    non_finite_loss: float
    labels_min: float
    labels_max: float
    score_min: float
    score_max: float
    normalizer: float
    loss: float
    others_bad: float


def find_equalized_losses(model):
    """``[(qualified name, module)]`` of every EFL/EQFL module inside ``model`` (DDP or not)."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, EqualizedLossBase)]


class EqualizedLossBase(nn.Module):
    """Per-class gradient statistics of an equalized sigmoid loss (Li et al., CVPR 2022, §3.2).

    Buffers, float32, shape (C,), saved in the state_dict (so checkpoints carry them):

    * ``pos_grad``, ``neg_grad``: running sums, over every training call, of |∂L/∂x| of the
      returned loss L over positive and negative entries of each class (all processes summed);
    * ``pos_neg``: g_j = clamp(pos_grad / (neg_grad + 1e-10), 0, 1). It starts at 1, so the first
      call is exactly focal loss (QFL).

    g_j sets the focusing factor γ_j = γ_b + s·(1 − g_j) and the weighting factor w_j = γ_j / γ_b.
    Each call uses the statistics from before its own update.

    Input checks: shapes and dtypes are checked before any computation. The values (labels in
    [0, C], quality targets in [0, 1], a tensor normalizer > 0) and the finiteness of the loss are
    computed on the logits' device and read back to the host once per call, together, after the
    pass and before the statistics change; so a GPU stream stalls once per call, and bad input
    still raises before it can touch the statistics. In training the problem flags travel in the
    statistics all-reduce, so when one process raises, every process raises.
    """

    # The buffers of the per-class statistics: training state, which inference does not read, so
    # that a checkpoint without them still loads for evaluation (efl.engine.checkpoint looks for
    # this attribute on every module).
    training_state_buffers = ("pos_grad", "neg_grad", "pos_neg")

    def __init__(self, *, num_classes, gamma_b, scale_factor, loss_weight):
        super().__init__()
        if not isinstance(num_classes, numbers.Integral) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        if gamma_b < 0 or scale_factor < 0:
            raise ValueError(f"gamma_b and scale_factor must be ≥ 0, got {gamma_b} and {scale_factor}")
        if gamma_b == 0 and scale_factor > 0:
            raise ValueError("gamma_b = 0 makes the weighting factor γ_j / γ_b undefined; use gamma_b > 0")
        self.num_classes = int(num_classes)
        self.gamma_b = float(gamma_b)
        self.scale_factor = float(scale_factor)
        self.loss_weight = float(loss_weight)
        # Logits per chunk of the fused pass; None picks a per-device default.
        self.chunk_entries = None
        self.register_buffer("pos_grad", torch.zeros(num_classes))
        self.register_buffer("neg_grad", torch.zeros(num_classes))
        self.register_buffer("pos_neg", torch.ones(num_classes))

    def extra_repr(self):
        return (f"num_classes={self.num_classes}, gamma_b={self.gamma_b}, "
                f"scale_factor={self.scale_factor}, loss_weight={self.loss_weight}")

    def statistics_state(self):
        """``{buffer name: detached CPU copy}`` of the statistics (``training_state_buffers``)."""
        return {name: getattr(self, name).detach().cpu().clone() for name in self.training_state_buffers}

    def gradient_ratio(self):
        """pos_grad / (neg_grad + 1e-10), (C,), detached and unclamped: g_j before its clamp to
        [0, 1] (a class above 1 is balanced; the clamp hides by how much)."""
        return self.pos_grad.detach() / (self.neg_grad.detach() + 1e-10)

    def focusing_factors(self):
        """γ_j = γ_b + s·(1 − g_j), (C,), detached."""
        return self.gamma_b + self.scale_factor * (1.0 - self.pos_neg.detach())

    def weighting_factors(self):
        """w_j = γ_j / γ_b, (C,), detached (1 when γ_b = s = 0)."""
        if self.gamma_b == 0:
            return torch.ones_like(self.pos_neg)
        return self.focusing_factors() / self.gamma_b

    # ----------------------------------------------------------------------------------------
    def _check_inputs(self, logits, labels, normalizer, scores=None):
        """Shape and dtype checks (no host read). Returns ``(labels, normalizer)``: labels as
        int64, the normalizer as a float or as a detached 0-dim float64 tensor on the logits'
        device (its value is checked with the loss, see ``_equalized_loss``)."""
        name = type(self).__name__
        if not torch.is_tensor(logits) or logits.dim() != 2 or logits.shape[1] != self.num_classes:
            shape = tuple(logits.shape) if torch.is_tensor(logits) else type(logits).__name__
            raise ValueError(f"{name}: logits must be (N, {self.num_classes}), got {shape}")
        if not logits.is_floating_point():
            raise ValueError(f"{name}: logits must be floating point, got {logits.dtype}")
        num_rows = logits.shape[0]
        if not torch.is_tensor(labels) or labels.shape != (num_rows,) or labels.dtype not in _LABEL_DTYPES:
            desc = (f"{tuple(labels.shape)} {labels.dtype}" if torch.is_tensor(labels)
                    else type(labels).__name__)
            raise ValueError(f"{name}: labels must be an integer tensor (int64, int32, int16 or int8; "
                             f"not uint8 or bool) of shape ({num_rows},), got {desc}")
        if scores is not None:
            if not torch.is_tensor(scores) or scores.shape != (num_rows,) or not scores.is_floating_point():
                desc = (f"{tuple(scores.shape)} {scores.dtype}" if torch.is_tensor(scores)
                        else type(scores).__name__)
                raise ValueError(f"{name}: scores must be a float tensor of shape ({num_rows},), got {desc}")
        return labels.to(device=logits.device, dtype=torch.int64), self._check_normalizer(normalizer, logits.device)

    def _check_normalizer(self, normalizer, device):
        # The normalizer is a count (of positives, or their mean over processes): it is detached
        # on purpose, the loss has no gradient with respect to it.
        name = type(self).__name__
        if torch.is_tensor(normalizer):
            if normalizer.numel() != 1:
                raise ValueError(f"{name}: normalizer must be a number or a 0-dim tensor, "
                                 f"got shape {tuple(normalizer.shape)}")
            if normalizer.device == device or normalizer.device.type != "cpu":
                # Checked with the loss: reading it here would be a second host read.
                return normalizer.detach().reshape(()).to(device=device, dtype=torch.float64)
            # A host tensor with device logits: reading it costs nothing, copying it would sync.
            normalizer = float(normalizer.detach())
        elif not isinstance(normalizer, numbers.Real):
            raise ValueError(f"{name}: normalizer must be a number or a 0-dim tensor, got {type(normalizer).__name__}")
        normalizer = float(normalizer)
        if not (normalizer > 0 and math.isfinite(normalizer)):
            raise ValueError(f"{name}: normalizer must be a finite number > 0, got {normalizer}")
        return normalizer

    def _problems(self, labels, scores, normalizer, loss):
        """On the device, without a host read: ``(flags, values)``, float64, the first ten fields
        of ``_HostReport`` in its order. ``flags`` (4,) is 1 where a problem was found;
        ``values`` (6,) what the messages quote."""
        device = loss.device
        f64 = dict(dtype=torch.float64, device=device)
        if labels.numel():
            label_range = torch.stack([labels.min(), labels.max()]).double()
        else:
            label_range = torch.zeros(2, **f64)
        bad_labels = (label_range[0] < 0) | (label_range[1] > self.num_classes)
        if scores is not None:
            is_pos = (labels >= 0) & (labels < self.num_classes)
            # torch.full, not torch.tensor: a host-to-device copy would stall a GPU stream
            inf = torch.full((), float("inf"), **f64)
            scores = scores.detach().double()
            # min/max propagate NaN, which fails both comparisons below.
            if labels.numel():
                score_range = torch.stack([torch.where(is_pos, scores, inf).min(),
                                           torch.where(is_pos, scores, -inf).max()])
            else:
                score_range = torch.stack([inf, -inf])
            bad_scores = (score_range[0] != inf) & ~((score_range[0] >= 0) & (score_range[1] <= 1))
        else:
            score_range = torch.zeros(2, **f64)
            bad_scores = torch.zeros((), dtype=torch.bool, device=device)
        norm = normalizer if torch.is_tensor(normalizer) else torch.full((), normalizer, **f64)
        bad_normalizer = ~((norm > 0) & torch.isfinite(norm))
        loss_value = loss.detach().double()
        flags = torch.stack([bad_labels, bad_scores, bad_normalizer, ~torch.isfinite(loss_value)]).double()
        values = torch.cat([label_range, score_range, norm.reshape(1), loss_value.reshape(1)])
        return flags, values

    def _raise_on_problems(self, report: _HostReport):
        """Raise for the first local problem; else, if another process had one, raise too (every
        process must stop at the same call, or the next all-reduce would wait forever)."""
        name, C = type(self).__name__, self.num_classes
        if report.bad_labels:
            raise ValueError(f"{name}: labels must lie in [0, {C}] ({C} = background), "
                             f"got values in [{int(report.labels_min)}, {int(report.labels_max)}]")
        if report.bad_scores:
            raise ValueError(f"{name}: scores (quality targets) of positive rows must lie in [0, 1], "
                             f"got values in [{report.score_min}, {report.score_max}]")
        if report.bad_normalizer:
            raise ValueError(f"{name}: normalizer must be a finite number > 0, got {report.normalizer}")
        if report.non_finite_loss:
            raise FloatingPointError(f"{name}: these logits contain NaN or Inf (the loss is {report.loss}); "
                                     "the gradient statistics were left unchanged")
        if report.others_bad > 0:
            raise FloatingPointError(f"{name}: the logits or arguments of another process were invalid "
                                     "(see its error); the gradient statistics were left unchanged")

    def _equalized_loss(self, logits, labels, normalizer, *, scores, neg_weight, pos_weight):
        """Run the fused pass, check the values with one host read, and, in training mode, fold
        the pass's gradient sums into the statistics."""
        device = logits.device
        gamma = self.focusing_factors().to(device)
        chunk = self.chunk_entries or default_chunk_entries(device)
        loss, pos_sum, neg_sum = EqualizedSigmoidLossFunction.apply(
            logits, labels, scores, gamma, neg_weight.to(device), pos_weight.to(device),
            self.loss_weight / normalizer, self.training, chunk,
        )
        flags, values = self._problems(labels, scores, normalizer, loss)
        if self.training:
            # One all-reduce for the statistics and the problem count: any process's problem makes
            # every process raise instead of deadlocking later.
            pos_sum, neg_sum, problem_count = all_reduce_sum_(
                torch.cat([pos_sum, neg_sum, flags.any().float().reshape(1)])
            ).split([self.num_classes, self.num_classes, 1])
            host = torch.cat([flags, values, problem_count.double()]).tolist()  # the one host read
        else:
            host = torch.cat([flags, values]).tolist() + [0.0]
        self._raise_on_problems(_HostReport._make(host))
        if self.training:
            with torch.no_grad():
                self.pos_grad += pos_sum.to(self.pos_grad.device)
                self.neg_grad += neg_sum.to(self.neg_grad.device)
                self.pos_neg.copy_(torch.clamp(self.gradient_ratio(), 0, 1))
        return loss
