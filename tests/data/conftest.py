import dataclasses
import json
import os

import pytest

import efl  # noqa: F401  (compatibility fixes before detectron2)
from efl.data.synthetic import PRESETS, generate

# A set big enough to hold LVIS's three buckets (frequent needs > 100 training images), with small
# images so that it generates in about a second.
MEDIUM = dataclasses.replace(
    PRESETS["default"], num_classes=30, num_train_images=360, num_val_images=100, image_size=64, seed=5
)


def load_json(root, split):
    with open(os.path.join(root, "annotations", f"synthetic_lt_{split}.json")) as f:
        return json.load(f)


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("synthetic") / "tiny")
    generate(PRESETS["tiny"], root)
    return root


@pytest.fixture(scope="session")
def medium_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("synthetic") / "medium")
    generate(MEDIUM, root)
    return root
