"""Equalized Quality Focal Loss (EQFL): the equalizing focusing and weighting factors of EFL applied
to the Quality Focal Loss of GFL (Li et al., NeurIPS 2020), whose positive target is the IoU of the
predicted box with its ground truth."""
from .equalized_loss_base import EqualizedLossBase

__all__ = ["EqualizedQualityFocalLoss"]


class EqualizedQualityFocalLoss(EqualizedLossBase):
    """EQFL = w_j · |q − p|^γ_j · BCE(p, q) for the positive entry (q = quality target) and
    w_j · p^γ_j · BCE(p, 0) for negatives; no α. ``scale_factor=0`` gives plain QFL (the baseline).
    """

    def __init__(self, num_classes, gamma_b=2.0, scale_factor=4.0, loss_weight=1.0):
        """
        Args:
            num_classes: C, the number of foreground classes (label C is background).
            gamma_b: the base focusing factor γ_b.
            scale_factor: s, how far γ_j = γ_b + s·(1 − g_j) rises for classes with g_j < 1.
            loss_weight: multiplies the loss (and so its gradient and the statistics).
        """
        super().__init__(num_classes=num_classes, gamma_b=gamma_b, scale_factor=scale_factor,
                         loss_weight=loss_weight)

    def forward(self, logits, labels, scores, normalizer):
        """
        Args:
            logits: (N, C) classification logits, any float dtype (computed in fp32).
            labels: (N,) integer (not uint8/bool) in [0, C]; C is background.
            scores: (N,) quality targets in [0, 1] for positive rows (ignored for background rows).
                A positive entry counts as positive in the statistics whatever its score.
            normalizer: a positive number or 0-dim tensor, treated as a constant (detached).

        Returns:
            a scalar fp32 tensor (fp64 for fp64 logits).
        """
        labels, normalizer = self._check_inputs(logits, labels, normalizer, scores)
        weight = self.weighting_factors()
        return self._equalized_loss(logits, labels, normalizer, scores=scores.detach(),
                                    neg_weight=weight, pos_weight=weight)

    def forward_with_quality(self, logits, labels, quality, normalizer):
        """:meth:`forward` with ``quality`` as the scores (quality targets)."""
        return self(logits, labels, quality, normalizer)
