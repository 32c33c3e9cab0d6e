"""The two detector families at test size, built from the project's configs: the tiny improved
baseline of tests/engine/tiny_config.py and the nano YOLOX-IP of the CPU demo
(configs/demo/efl_yolox_ip_nano_synthetic.py), both with EFL on the six classes of the tiny
LVIS-format set (tests/engine/tiny_lvis.py), and that set's two pictures as one fixed batch."""
import os
from pathlib import Path

import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.data import DatasetCatalog

from ..engine.tiny_lvis import CATEGORIES, write_tiny_lvis

REPO = Path(__file__).resolve().parents[2]
TINY_CONFIG = REPO / "tests/engine/tiny_config.py"
NANO_YOLOX_CONFIG = REPO / "configs/demo/efl_yolox_ip_nano_synthetic.py"
FAMILIES = ["improved_baseline", "yolox_ip_nano"]


def tiny_lvis_config(root):
    """tests/engine/tiny_config.py with the tiny set written under ``root`` (and registered)."""
    if not (Path(root) / "annotations.json").exists():
        write_tiny_lvis(str(root))
    os.environ["EFL_TEST_TINY_LVIS"] = str(root)  # read (once per process) by the config
    return LazyConfig.load(str(TINY_CONFIG))


def build_detector(family, cfg, device, seed=0):
    """A freshly initialised detector of ``family`` (seeded) on ``device``, in training mode."""
    if family == "improved_baseline":
        model_cfg = cfg.model
    elif family == "yolox_ip_nano":
        model_cfg = LazyConfig.load(str(NANO_YOLOX_CONFIG)).model
        model_cfg.num_classes = len(CATEGORIES)
    else:
        raise ValueError(f"unknown family {family!r}, expected one of {FAMILIES}")
    torch.manual_seed(seed)
    return instantiate(model_cfg).to(device).train()


def training_batch(cfg):
    """The tiny set's pictures through the training mapper of tiny_config.py (no augmentation,
    so the batch is the same every time): a list of Detectron2 dataset dicts."""
    mapper = instantiate(cfg.dataloader.train.mapper)
    return [mapper(d) for d in DatasetCatalog.get("efl_test_tiny")]
