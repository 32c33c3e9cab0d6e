"""What the converter found in a reference checkpoint."""
from dataclasses import dataclass, field
from typing import List

from .key_rules import RuleSet

__all__ = ["EODModelInfo"]


@dataclass
class EODModelInfo:
    """The family and size of a reference model and the config of this project that builds it."""

    family: str  # "improved_baseline" or "yolox_ip"
    size: str  # "R50", "R101"; "S", "M", "L", "X"
    num_classes: int  # foreground classes
    num_anchors: int  # anchors (predictions) per location
    config: str  # the matching config, relative to the repository root
    overrides: List[str] = field(default_factory=list)  # key=value the config needs, if any
    rules: RuleSet = None  # reference key <-> our key
    # Whether our model has the BN counters: its BatchNorm2d does (YOLOX-IP); Detectron2's
    # FrozenBatchNorm2d does not (improved baseline), and there a frozen BN's counter is unused.
    keeps_num_batches_tracked: bool = False

    @property
    def inference_overrides(self) -> List[str]:
        """The overrides that make the matching config infer as the reference (its test resize
        and post-processing): what the reference's detections need (docs/eod_checkpoints.md)."""
        return [f"model.eod_inference={self.family}", "dataloader.test.mapper.opencv_resize=True"]

    def describe(self) -> str:
        family = {"improved_baseline": "improved baseline", "yolox_ip": "YOLOX-IP"}[self.family]
        return (f"{family} {self.size}, {self.num_classes} classes, {self.num_anchors} anchors "
                "per location")
