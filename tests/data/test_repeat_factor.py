import math

import pytest
import torch

from detectron2.data.samplers import RepeatFactorTrainingSampler
from efl.data import (
    expanded_epoch_length,
    iterations_for_epochs,
    lvis_equivalent_threshold,
    repeat_factors_from_category_frequency,
)
from efl.data.repeat_factor import LVIS_V1_TRAIN_IMAGES


def _dicts(classes_per_image):
    return [{"annotations": [{"category_id": c} for c in classes]} for classes in classes_per_image]


# 10 images: class 0 in 1 image (f = 0.1), class 1 in 4 (f = 0.4), class 2 in 8 (f = 0.8); the last
# image has no annotation. With t = 0.5: r_0 = sqrt(5) = 2.236, r_1 = sqrt(1.25) = 1.118, r_2 = 1.
IMAGES = [[0, 2], [1, 2], [1, 2], [1], [1, 2], [2], [2], [2], [2], []]
R0, R1 = math.sqrt(5.0), math.sqrt(1.25)


def test_stochastic_factors_match_hand_computation_and_detectron2():
    factors = repeat_factors_from_category_frequency(_dicts(IMAGES), repeat_thresh=0.5, rounding="stochastic")
    expected = torch.tensor([R0, R1, R1, R1, R1, 1, 1, 1, 1, 1], dtype=torch.float32)
    assert torch.allclose(factors, expected)
    detectron2 = RepeatFactorTrainingSampler.repeat_factors_from_category_frequency(_dicts(IMAGES), 0.5)
    assert torch.allclose(factors, detectron2)
    assert expanded_epoch_length(factors) == pytest.approx(R0 + 4 * R1 + 5)


def test_ceil_factors_round_every_image_up_like_the_reference():
    factors = repeat_factors_from_category_frequency(_dicts(IMAGES), repeat_thresh=0.5, rounding="ceil")
    assert factors.tolist() == [3, 2, 2, 2, 2, 1, 1, 1, 1, 1]
    assert expanded_epoch_length(factors) == 16
    # 24 epochs of 16 images at 4 images per iteration.
    assert iterations_for_epochs(factors, epochs=24, total_batch_size=4) == 96


def test_a_run_is_epochs_times_one_epoch_whose_last_short_batch_is_kept():
    # The reference's epoch of E = 16 images at B = 5 is ceil(16 / 5) = 4 iterations (the last
    # holds 1 image), and 24 epochs are 24 x 4 = 96 iterations, not ceil(24 x 16 / 5) = 77.
    assert iterations_for_epochs(16, epochs=1, total_batch_size=5) == 4
    assert iterations_for_epochs(16, epochs=24, total_batch_size=5) == 96
    factors = torch.tensor([3.0, 2, 2, 2, 2, 1, 1, 1, 1, 1])
    assert iterations_for_epochs(factors, epochs=24, total_batch_size=5) == 96
    with pytest.raises(ValueError, match="positive"):
        iterations_for_epochs(0, epochs=24, total_batch_size=5)


def test_exact_integer_factor_is_not_rounded_past_itself():
    # Class 0 in 1 of 25 images, t = 0.28, linear: r_0 = 0.28 * 25 = 7 exactly, which floating
    # point computes as 7.000000000000001; a plain ceil would repeat the image 8 times.
    images = [[0]] + [[1]] * 24
    assert 0.28 / (1 / 25) > 7
    factors = repeat_factors_from_category_frequency(_dicts(images), repeat_thresh=0.28, sqrt=False, rounding="ceil")
    assert factors[0].item() == 7 and factors[1:].eq(1).all()


def test_without_sqrt_the_factor_is_linear_in_the_frequency_ratio():
    factors = repeat_factors_from_category_frequency(
        _dicts(IMAGES), repeat_thresh=0.5, sqrt=False, rounding="stochastic"
    )
    assert factors[0].item() == pytest.approx(5.0) and factors[1].item() == pytest.approx(1.25)


def test_detectron2_sampler_repeats_each_image_exactly_ceil_times_per_epoch():
    factors = repeat_factors_from_category_frequency(_dicts(IMAGES), repeat_thresh=0.5, rounding="ceil")
    sampler = RepeatFactorTrainingSampler(factors, shuffle=True, seed=3)
    stream = iter(sampler)
    for _ in range(3):  # every epoch, not only on average
        epoch = [next(stream) for _ in range(16)]
        assert torch.bincount(torch.tensor(epoch), minlength=10).tolist() == factors.int().tolist()


def test_lvis_equivalent_threshold_keeps_t_times_n():
    assert LVIS_V1_TRAIN_IMAGES == 100170  # LVIS v1 train (Gupta et al., 2019)
    assert lvis_equivalent_threshold(100170) == pytest.approx(0.001)
    assert lvis_equivalent_threshold(800) * 800 == pytest.approx(0.001 * 100170)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="rounding"):
        repeat_factors_from_category_frequency(_dicts(IMAGES), rounding="floor")
    with pytest.raises(ValueError, match="empty"):
        repeat_factors_from_category_frequency([], rounding="ceil")
