"""Equalized Focal Loss (EFL), Li et al., "Equalized Focal Loss for Dense Long-Tailed Object
Detection", CVPR 2022, eq. (6): a sigmoid focal loss whose focusing factor γ_j and weighting factor
w_j grow for classes whose positive/negative gradient ratio g_j is low (the rare ones)."""
import math
import numbers

from .equalized_loss_base import EqualizedLossBase

__all__ = ["EqualizedFocalLoss"]


def _check_alpha(alpha):
    if alpha is None:
        return None
    if not isinstance(alpha, numbers.Real) or math.isnan(alpha) or alpha > 1:
        raise ValueError(f"alpha must lie in [0, 1], or be None (or negative) to disable it, got {alpha!r}")
    return None if alpha < 0 else float(alpha)


class EqualizedFocalLoss(EqualizedLossBase):
    """EFL(p_t) = −α_t · w_j · (1 − p_t)^γ_j · log(p_t), summed over entries, × loss_weight / normalizer.

    With ``scale_factor=0`` this is exactly the sigmoid focal loss of RetinaNet (the baseline).
    """

    def __init__(self, num_classes, gamma_b=2.0, scale_factor=8.0, alpha=0.25, loss_weight=1.0):
        """
        Args:
            num_classes: C, the number of foreground classes (label C is background).
            gamma_b: the base focusing factor γ_b.
            scale_factor: s, how far γ_j = γ_b + s·(1 − g_j) rises for classes with g_j < 1.
            alpha: the balance α ∈ [0, 1] of positives (1 − α for negatives); None or a negative
                number (fvcore's ``sigmoid_focal_loss`` convention, ``alpha=-1``) disables it.
            loss_weight: multiplies the loss (and so its gradient and the statistics).
        """
        super().__init__(num_classes=num_classes, gamma_b=gamma_b, scale_factor=scale_factor,
                         loss_weight=loss_weight)
        self.alpha = _check_alpha(alpha)

    def extra_repr(self):
        return super().extra_repr() + f", alpha={self.alpha}"

    def forward(self, logits, labels, normalizer):
        """
        Args:
            logits: (N, C) classification logits, any float dtype (computed in fp32).
            labels: (N,) integer (not uint8/bool) in [0, C]; C is background. Ignored anchors
                must be dropped before.
            normalizer: a positive number or 0-dim tensor (e.g. the mean number of positives);
                treated as a constant (a tensor is detached: no gradient flows into it).

        Returns:
            a scalar fp32 tensor (fp64 for fp64 logits).
        """
        labels, normalizer = self._check_inputs(logits, labels, normalizer)
        weight = self.weighting_factors().double()  # α·w rounds once, in the compute dtype
        if self.alpha is None:
            neg_weight = pos_weight = weight
        else:
            neg_weight, pos_weight = (1 - self.alpha) * weight, self.alpha * weight
        return self._equalized_loss(logits, labels, normalizer, scores=None,
                                    neg_weight=neg_weight, pos_weight=pos_weight)

    def forward_with_quality(self, logits, labels, quality, normalizer):
        """:meth:`forward`; EFL has no quality target, so ``quality`` is not used."""
        return self(logits, labels, normalizer)
