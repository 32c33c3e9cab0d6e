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
Detectron2 counts iterations, the reference counts epochs. The reference's epoch is
⌈E / B⌉ iterations of B images (its batch sampler keeps the last, short batch), E = Σ_i ⌈r_i⌉ for
the improved baseline's expanded list (|D| for YOLOX-IP), and a run of n epochs is n · ⌈E / B⌉
iterations: `iterations_for_epochs`, the one place this is computed (configs/common/schedules.py
uses it too).

The threshold t means the same thing only at the same dataset size: what matters is t · N, the
number of images below which a class is repeated (≈100 for LVIS v1, 100,170 images × 0.001).
A small set keeps LVIS's behaviour with t = 100 / N (`lvis_equivalent_threshold`).
"""
import math

import torch
from detectron2.data.samplers import RepeatFactorTrainingSampler

__all__ = [
    "LVIS_V1_TRAIN_IMAGES",
    "repeat_factors_from_category_frequency",
    "expanded_epoch_length",
    "iterations_for_epochs",
    "lvis_equivalent_threshold",
]

# Images in LVIS v1 train (the one definition in the project).
LVIS_V1_TRAIN_IMAGES = 100170
# Relative: Detectron2 returns float32 factors, whose rounding error (and that of squaring them
# for sqrt=False) must not push an exact integer such as 7 to 7.0000005 and then ceil it to 8.
_CEIL_TOLERANCE = 1e-6


def repeat_factors_from_category_frequency(dataset_dicts, *, repeat_thresh=0.001, sqrt=True, rounding="ceil"):
    """
    Per-image repeat factors: Detectron2's
    ``RepeatFactorTrainingSampler.repeat_factors_from_category_frequency``, rounded up for "ceil".

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
    factors = RepeatFactorTrainingSampler.repeat_factors_from_category_frequency(
        dataset_dicts, repeat_thresh
    ).double()
    if not sqrt:
        # Detectron2 0.6 always takes the square root; max(1, sqrt(x))² = max(1, x).
        factors = factors**2
    if rounding == "ceil":
        factors = torch.ceil(factors * (1 - _CEIL_TOLERANCE))
    return factors.float()


def expanded_epoch_length(repeat_factors):
    """Σ_i r_i: images per epoch of the expanded list (exact for ceil, expected for stochastic)."""
    return float(torch.as_tensor(repeat_factors, dtype=torch.float64).sum())


def iterations_for_epochs(epoch_length, *, epochs, total_batch_size):
    """Detectron2 iterations of ``epochs`` reference epochs: ``epochs * ⌈epoch_length / B⌉``.

    Args:
        epoch_length: images in one epoch (E = Σ_i ⌈r_i⌉ for the expanded list, |D| without
            repeats), or the per-image repeat factors, whose sum it then is.
        epochs: the number of epochs (a whole number, so schedule steps fall on epoch ends).
        total_batch_size: B, images per iteration over all processes.
    """
    if torch.is_tensor(epoch_length):
        epoch_length = expanded_epoch_length(epoch_length)
    if epoch_length <= 0 or total_batch_size <= 0:
        raise ValueError(f"epoch_length and total_batch_size must be positive, got {epoch_length} "
                         f"and {total_batch_size}")
    return int(epochs) * math.ceil(epoch_length / total_batch_size)


def lvis_equivalent_threshold(num_images):
    """The t that repeats the same classes in a set of `num_images` as t = 0.001 does in LVIS v1."""
    return 0.001 * LVIS_V1_TRAIN_IMAGES / num_images
