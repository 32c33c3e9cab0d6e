"""Norm layers for detectron2's heads."""
from torch import nn

__all__ = ["GroupNormFactory"]


class GroupNormFactory:
    """``channels -> nn.GroupNorm(min(num_groups, channels), channels)``, to pass as a head's
    ``norm``.

    For detectron2 0.6, whose ``RetinaNetHead`` calls ``get_norm(norm, 1)`` with one channel only
    to log the norm's type: a plain ``lambda c: nn.GroupNorm(32, c)`` fails there (32 groups of
    one channel). Capping the groups by the channels changes nothing for the real layers.
    """

    def __init__(self, num_groups: int):
        """
        Args:
            num_groups: the GroupNorm groups of every layer with at least that many channels.
        """
        self.num_groups = num_groups

    def __call__(self, channels: int) -> nn.GroupNorm:
        return nn.GroupNorm(min(self.num_groups, channels), channels)
