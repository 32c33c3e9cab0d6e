"""A synthetic long-tailed detection set that behaves like LVIS v1 in miniature.

Generated from a seed in seconds with numpy and OpenCV, never downloaded, and written as real LVIS
v1 json plus JPEG images, so Detectron2's LVIS loader, its LVISEvaluator and the official `lvis`
API read it unchanged. Classes are shape × colour × texture conjunctions on cluttered backgrounds,
with occlusion, scale variation and unannotated distractors; their training image counts follow
LVIS's long tail (rare: 1-10 images, common: 11-100, frequent: more), and the validation split holds
every class often enough to measure APr.

Presets (`PRESETS`): "default" (the demo set: 48 classes, `synthetic_lt_*`), "tiny" (tests) and
"fine_grained" (`synthetic_fg_*`: frequent parent classes with rare and common "holed" and
"stretched" siblings of the same shape, colour and texture; docs/synthetic_dataset.md).

`python -m efl.data.synthetic --help` generates sets of other sizes and seeds.
"""
from .generator import (
    PRESETS,
    FineGrainedLTSpec,
    SyntheticLTSpec,
    category_metadata,
    ensure_generated,
    generate,
)

__all__ = [
    "FineGrainedLTSpec",
    "PRESETS",
    "SyntheticLTSpec",
    "category_metadata",
    "ensure_generated",
    "generate",
]
