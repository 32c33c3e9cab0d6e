"""EFL and EQFL with their analytic derivative; focal loss and QFL are the same modules with
``scale_factor=0``."""
from .equalized_focal_loss import EqualizedFocalLoss
from .equalized_loss_base import EqualizedLossBase, find_equalized_losses
from .equalized_quality_focal_loss import EqualizedQualityFocalLoss

__all__ = ["EqualizedFocalLoss", "EqualizedQualityFocalLoss", "EqualizedLossBase", "find_equalized_losses"]
