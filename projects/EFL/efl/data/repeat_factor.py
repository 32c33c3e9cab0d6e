"""Repeat factor sampling (RFS, Gupta et al., LVIS, 2019, appendix B.2) with a choice of rounding.

For each class c, f_c is the fraction of training images that contain it and
r_c = max(1, (t / f_c) ** 0.5); an image is repeated r_i = max_{c in image} r_c times per epoch.
r_i is fractional, and the two implementations round it differently:

- "ceil": the reference implementation (EOD/United-Perception) repeats each image ⌈r_i⌉ times,
  every epoch. One epoch is the expanded list, Σ_i ⌈r_i⌉ images.
- "stochastic": Detectron2 repeats an image ⌊r_i⌋ times plus once more with probability
  r_i - ⌊r_i⌋, redrawn each epoch, so the epoch is Σ_i r_i images in expectation.

Both feed Detectron2's `RepeatFactorTrainingSampler`: with integer factors its stochastic part
vanishes, so ceil rounding needs no sampler of its own. In a LazyConfig:
```
sampler=L(RepeatFactorTrainingSampler)(
    repeat_factors=L(repeat_factors_from_category_frequency)(
        dataset_dicts="${...dataset}", repeat_thresh=0.001, rounding="ceil"
    )
)
```
Detectron2 counts iterations, the reference counts epochs: with ceil rounding, E reference epochs
at a total batch B are `E * expanded_epoch_length(repeat_factors) / B` iterations
(`iterations_for_epochs`).

The threshold t means the same thing only at the same dataset size: what matters is t · N, the
number of images below which a class is repeated (≈100 for LVIS v1, 100,170 images × 0.001).
A small set keeps LVIS's behaviour with t = 100 / N (`lvis_equivalent_threshold`).
"""
import collections
import math

import torch

__all__ = [
    "repeat_factors_from_category_frequency",
    "expanded_epoch_length",
    "iterations_for_epochs",
    "lvis_equivalent_threshold",
]

# ceil(2.0000000000000004) would repeat an image 3 times where the exact factor is 2.
_CEIL_TOLERANCE = 1e-6
_LVIS_V1_TRAIN_IMAGES = 100170


def repeat_factors_from_category_frequency(dataset_dicts, *, repeat_thresh=0.001, sqrt=True, rounding="ceil"):
    """
    Per-image repeat factors.

    Args:
        dataset_dicts: list[dict] in Detectron2's format (the training set, without repeats).
        repeat_thresh: t, the class frequency below which an image is repeated.
        sqrt: r_c = sqrt(t / f_c) if True (LVIS, the reference), else t / f_c.
        rounding: "ceil" (the reference: ⌈r_i⌉, deterministic) or "stochastic" (Detectron2:
            fractional factors, rounded by the sampler each epoch).

    Returns:
        torch.Tensor: (len(dataset_dicts),) float32 factors; integers for "ceil". Images without
        annotations get 1.
    """
    if rounding not in ("ceil", "stochastic"):
        raise ValueError(f"rounding must be 'ceil' or 'stochastic', got {rounding!r}")
    if len(dataset_dicts) == 0:
        raise ValueError("cannot compute repeat factors of an empty dataset")
    classes_per_image = [{ann["category_id"] for ann in d.get("annotations", [])} for d in dataset_dicts]
    images_per_class = collections.Counter(c for classes in classes_per_image for c in classes)
    num_images = len(dataset_dicts)
    power = 0.5 if sqrt else 1.0
    class_factor = {
        c: max(1.0, (repeat_thresh / (n / num_images)) ** power) for c, n in images_per_class.items()
    }
    factors = []
    for classes in classes_per_image:
        r = max((class_factor[c] for c in classes), default=1.0)
        factors.append(float(math.ceil(r - _CEIL_TOLERANCE)) if rounding == "ceil" else r)
    return torch.tensor(factors, dtype=torch.float32)


def expanded_epoch_length(repeat_factors):
    """Σ_i r_i: images per epoch of the expanded list (exact for ceil, expected for stochastic)."""
    return float(torch.as_tensor(repeat_factors, dtype=torch.float64).sum())


def iterations_for_epochs(repeat_factors, *, epochs, total_batch_size):
    """Detectron2 iterations that cover `epochs` epochs of the expanded list (rounded up)."""
    return math.ceil(epochs * expanded_epoch_length(repeat_factors) / total_batch_size)


def lvis_equivalent_threshold(num_images):
    """The t that repeats the same classes in a set of `num_images` as t = 0.001 does in LVIS v1."""
    return 0.001 * _LVIS_V1_TRAIN_IMAGES / num_images
