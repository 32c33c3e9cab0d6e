"""What EFL and EQFL share: the per-class gradient statistics, the focusing and weighting factors
derived from them, input validation, and the call into the chunked autograd Function."""
import numbers

import torch
import torch.distributed as dist
from torch import nn

from .equalized_sigmoid_function import EqualizedSigmoidLossFunction, default_chunk_entries

__all__ = ["EqualizedLossBase"]


def _all_reduce_sum_(tensor):
    """Sum over processes in place; a no-op (and no collective) with one process or none."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


class EqualizedLossBase(nn.Module):
    """Per-class gradient statistics of an equalized sigmoid loss (Li et al., CVPR 2022, §3.2).

    Buffers, float32, shape (C,), saved in the state_dict (so checkpoints carry them):

    * ``pos_grad``, ``neg_grad``: running sums, over every training call, of |∂L/∂x| of the
      returned loss L over positive and negative entries of each class (all processes summed);
    * ``pos_neg``: g_j = clamp(pos_grad / (neg_grad + 1e-10), 0, 1). It starts at 1, so the first
      call is exactly focal loss (QFL).

    g_j sets the focusing factor γ_j = γ_b + s·(1 − g_j) and the weighting factor w_j = γ_j / γ_b.
    Each call uses the statistics from before its own update.
    """

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

    def focusing_factors(self):
        """γ_j = γ_b + s·(1 − g_j), (C,), detached."""
        return self.gamma_b + self.scale_factor * (1.0 - self.pos_neg.detach())

    def weighting_factors(self):
        """w_j = γ_j / γ_b, (C,), detached (1 when γ_b = s = 0)."""
        if self.gamma_b == 0:
            return torch.ones_like(self.pos_neg)
        return self.focusing_factors() / self.gamma_b

    def forward_with_quality(self, logits, labels, quality, normalizer):
        """The call shared by every loss of this package, so that a detector can hold any of them
        without asking which: quality-target losses (EQFL, QFL) use ``quality`` (N,) as the
        positive rows' targets, the others (EFL, focal) ignore it. Returns ``forward``'s loss."""
        raise NotImplementedError

    # ----------------------------------------------------------------------------------------
    def _check_inputs(self, logits, labels, normalizer, scores=None):
        name = type(self).__name__
        if not torch.is_tensor(logits) or logits.dim() != 2 or logits.shape[1] != self.num_classes:
            shape = tuple(logits.shape) if torch.is_tensor(logits) else type(logits).__name__
            raise ValueError(f"{name}: logits must be (N, {self.num_classes}), got {shape}")
        if not logits.is_floating_point():
            raise ValueError(f"{name}: logits must be floating point, got {logits.dtype}")
        num_rows = logits.shape[0]
        if not torch.is_tensor(labels) or labels.shape != (num_rows,) or labels.is_floating_point():
            desc = (f"{tuple(labels.shape)} {labels.dtype}" if torch.is_tensor(labels)
                    else type(labels).__name__)
            raise ValueError(f"{name}: labels must be an integer tensor of shape ({num_rows},), got {desc}")
        if num_rows and (labels.min() < 0 or labels.max() > self.num_classes):
            raise ValueError(
                f"{name}: labels must lie in [0, {self.num_classes}] ({self.num_classes} = background), "
                f"got values in [{int(labels.min())}, {int(labels.max())}]"
            )
        if scores is not None:
            if not torch.is_tensor(scores) or scores.shape != (num_rows,) or not scores.is_floating_point():
                desc = (f"{tuple(scores.shape)} {scores.dtype}" if torch.is_tensor(scores)
                        else type(scores).__name__)
                raise ValueError(f"{name}: scores must be a float tensor of shape ({num_rows},), got {desc}")
            pos_scores = scores[labels < self.num_classes]
            if pos_scores.numel() and not bool(((pos_scores >= 0) & (pos_scores <= 1)).all()):
                raise ValueError(
                    f"{name}: scores (quality targets) of positive rows must lie in [0, 1], got values "
                    f"in [{float(pos_scores.min())}, {float(pos_scores.max())}]"
                )
        if torch.is_tensor(normalizer):
            if normalizer.numel() != 1:
                raise ValueError(f"{name}: normalizer must be a number or a 0-dim tensor, "
                                 f"got shape {tuple(normalizer.shape)}")
            normalizer = float(normalizer)
        elif isinstance(normalizer, numbers.Real):
            normalizer = float(normalizer)
        else:
            raise ValueError(f"{name}: normalizer must be a number or a 0-dim tensor, got {type(normalizer).__name__}")
        if not normalizer > 0 or normalizer == float("inf"):
            raise ValueError(f"{name}: normalizer must be a finite number > 0, got {normalizer}")
        return normalizer

    def _equalized_loss(self, logits, labels, normalizer, *, scores, neg_weight, pos_weight):
        """Run the fused pass and, in training mode, fold its gradient sums into the statistics."""
        gamma = self.focusing_factors().to(logits.device)
        chunk = self.chunk_entries or default_chunk_entries(logits.device)
        loss, pos_sum, neg_sum = EqualizedSigmoidLossFunction.apply(
            logits, labels, scores, gamma, neg_weight.to(logits.device), pos_weight.to(logits.device),
            self.loss_weight / normalizer, self.training, chunk,
        )
        # Non-finite logits make the loss (and the sums) non-finite. In training every process
        # learns whether any process saw one, so all of them raise instead of deadlocking later.
        local_bad = ~torch.isfinite(loss)
        if self.training:
            packed = torch.cat([pos_sum, neg_sum, local_bad.float().reshape(1)])
            _all_reduce_sum_(packed)
            any_bad = bool(packed[-1] > 0)
        else:
            any_bad = bool(local_bad)
        if any_bad:
            where = "these logits" if bool(local_bad) else "the logits of another process"
            raise FloatingPointError(
                f"{type(self).__name__}: {where} contain NaN or Inf (the loss is {float(loss)}); "
                "the gradient statistics were left unchanged"
            )
        if self.training:
            C = self.num_classes
            with torch.no_grad():
                self.pos_grad += packed[:C].to(self.pos_grad.device)
                self.neg_grad += packed[C:2 * C].to(self.neg_grad.device)
                self.pos_neg.copy_(torch.clamp(self.pos_grad / (self.neg_grad + 1e-10), 0, 1))
        return loss
