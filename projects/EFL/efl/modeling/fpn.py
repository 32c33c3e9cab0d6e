"""FPN whose extra levels start from the C5 lateral, as in the EFL improved baseline.

Detectron2's ``LastLevelP6P7`` takes raw C5 (or P5) and puts a ReLU between P6 and P7. The improved
baseline (docs/improved_baseline.md) computes P6 with a stride-2 conv on the 256-channel *lateral*
output of C5 and P7 from P6 with no ReLU in between. Detectron2's FPN does not expose that lateral,
so this module overrides ``FPN.forward``; everything else (names ``p3``..., strides, size
divisibility, weight layout of the lateral/output convs) is Detectron2's.
"""
import torch.nn.functional as F
from torch import nn

import fvcore.nn.weight_init as weight_init
from detectron2.modeling.backbone import FPN

from ..compat.modeling import fpn_fuse_type, set_fpn_size_divisibility

__all__ = ["LastLevelP6P7FromLateral", "FPNWithLateralTop"]


class LastLevelP6P7FromLateral(nn.Module):
    """
    P6 = conv3x3/s2(lateral(C5)); P7 = conv3x3/s2(P6), without ReLU. ``num_levels`` can be 1
    (P6 only) or 2, so smaller models can drop the coarsest level.
    """

    def __init__(self, *, in_channels: int, out_channels: int, num_levels: int = 2):
        """
        Args:
            in_channels: channels of the C5 lateral, i.e. the FPN's ``out_channels``.
            out_channels: channels of P6 and P7.
            num_levels: extra levels to produce, 1 (P6) or 2 (P6, P7).
        """
        super().__init__()
        if num_levels not in (1, 2):
            raise ValueError(f"num_levels must be 1 or 2, got {num_levels}")
        self.num_levels = num_levels
        # Read by FPN.__init__ only to count levels; the input really is the C5 lateral.
        self.in_feature = "lateral5"
        self.p6 = nn.Conv2d(in_channels, out_channels, 3, 2, 1)
        self.p7 = nn.Conv2d(out_channels, out_channels, 3, 2, 1) if num_levels == 2 else None
        for module in (self.p6, self.p7):
            if module is not None:
                weight_init.c2_xavier_fill(module)

    def forward(self, c5_lateral):
        p6 = self.p6(c5_lateral)
        if self.p7 is None:
            return [p6]
        return [p6, self.p7(p6)]


class FPNWithLateralTop(FPN):
    """
    Detectron2's FPN, except that (1) the top block receives the lateral output of the coarsest
    input, (2) the top-down path upsamples to the exact size of the finer level, so inputs
    whose size is not a multiple of the coarsest stride still work, and (3) the batch padding
    (``size_divisibility``) can be set: the reference pads to 64, Detectron2 to the coarsest
    input stride (32), and the padding changes the detections near the right and bottom borders.
    """

    def __init__(self, *, size_divisibility=None, **kwargs):
        """
        Args:
            size_divisibility: pad batches to a multiple of this; None keeps Detectron2's choice.
            kwargs: the arguments of ``detectron2.modeling.backbone.FPN``.
        """
        super().__init__(**kwargs)
        if size_divisibility is not None:
            input_stride = self.size_divisibility  # Detectron2's: the coarsest input stride
            if size_divisibility % input_stride:
                raise ValueError(f"size_divisibility {size_divisibility} must be a multiple of the "
                                 f"coarsest input stride {input_stride}")
            set_fpn_size_divisibility(self, size_divisibility)

    def forward(self, x):
        bottom_up_features = self.bottom_up(x)
        average = fpn_fuse_type(self) == "avg"
        results = []
        # (N, C, H5, W5): the lateral of the coarsest input, kept for the top block.
        top_lateral = self.lateral_convs[0](bottom_up_features[self.in_features[-1]])
        prev_features = top_lateral
        results.append(self.output_convs[0](prev_features))
        for idx, (lateral_conv, output_conv) in enumerate(
            zip(self.lateral_convs, self.output_convs)
        ):
            if idx == 0:
                continue
            lateral_features = lateral_conv(bottom_up_features[self.in_features[-idx - 1]])
            top_down_features = F.interpolate(
                prev_features, size=lateral_features.shape[-2:], mode="nearest"
            )
            prev_features = lateral_features + top_down_features
            if average:
                prev_features = prev_features / 2
            results.insert(0, output_conv(prev_features))
        if self.top_block is not None:
            results.extend(self.top_block(top_lateral))
        assert len(self._out_features) == len(results)
        return dict(zip(self._out_features, results))
