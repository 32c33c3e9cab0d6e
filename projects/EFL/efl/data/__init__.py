"""Datasets, their checks and repeat factor sampling.

Importing this package registers the synthetic long-tailed sets and the `EFL_LVIS_ROOT` layout of
LVIS v1 and the `EFL_OID_ROOT` layout of Open Images with Detectron2 (see `efl.data.builtin`).
"""
from .custom import register_lvis_format_dataset
from .dataset_checks import DatasetCheckError, check_dataset_dicts
from .lvis import (
    LVIS_ROOT_ENV,
    class_image_count_from_dicts,
    load_lvis_json_checked,
    register_lvis_json,
    register_lvis_v1_efl,
)
from .openimages.datasets import (
    OID_ROOT_ENV,
    load_openimages_json,
    register_oid_challenge_2019_efl,
    register_openimages_json,
)
from .register_synthetic import register_synthetic_lt, register_synthetic_lt_dir
from .repeat_factor import (
    expanded_epoch_length,
    iterations_for_epochs,
    lvis_equivalent_threshold,
    repeat_factors_from_category_frequency,
)

from . import builtin  # noqa: F401,E402  (registers the datasets)

__all__ = [
    "DatasetCheckError",
    "LVIS_ROOT_ENV",
    "OID_ROOT_ENV",
    "check_dataset_dicts",
    "class_image_count_from_dicts",
    "expanded_epoch_length",
    "iterations_for_epochs",
    "load_lvis_json_checked",
    "load_openimages_json",
    "lvis_equivalent_threshold",
    "register_lvis_format_dataset",
    "register_lvis_json",
    "register_lvis_v1_efl",
    "register_oid_challenge_2019_efl",
    "register_openimages_json",
    "register_synthetic_lt",
    "register_synthetic_lt_dir",
    "repeat_factors_from_category_frequency",
]
