"""efl.data.eod_test_mapper: the reference's test-time reading and resizing (EOD det_transforms.py
``keep_ar_resize`` / ``keep_ar_resize_max``: cv2.resize(img, None, None, fx=s, fy=s,
INTER_LINEAR) with s = min(short / short side, max / long side); image read by OpenCV)."""
import efl  # noqa: F401  (compatibility fixes before detectron2)

import cv2
import numpy as np
import pytest
import torch

import detectron2.data.transforms as T
from detectron2.data import DatasetMapper

from efl.data.eod_test_mapper import EODTestMapper


def picture(path, height, width, seed=0):
    """A smooth random colour picture written as PNG (lossless: both readers see the same bytes)."""
    rng = np.random.default_rng(seed)
    low = rng.integers(0, 256, (max(height // 16, 2), max(width // 16, 2), 3)).astype(np.uint8)
    image = cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(path), image)
    return image  # BGR


def mapper(short, max_size, image_format="RGB", opencv_resize=True):
    return EODTestMapper(is_train=False, augmentations=[T.ResizeShortestEdge(short, max_size)],
                         image_format=image_format, opencv_resize=opencv_resize)


@pytest.mark.parametrize("short,max_size,size,expected", [
    (800, 1333, (427, 640), (800, 1199)),  # s = 800 / 427: 1199.06 columns
    (800, 1333, (200, 700), (381, 1333)),  # s = 1333 / 700 (long side bound)
    (640, 640, (427, 641), (426, 640)),  # YOLOX-IP: longest side 640, s = 640 / 641
])
def test_reference_scale_size_and_pixels(tmp_path, short, max_size, size, expected):
    bgr = picture(tmp_path / "a.png", *size)
    height, width = size
    s = min(short / min(size), max_size / max(size))
    out = mapper(short, max_size)({"file_name": str(tmp_path / "a.png"), "image_id": 7,
                                   "height": height, "width": width})
    assert out["image"].shape == (3, *expected) and out["image"].dtype == torch.uint8
    assert (out["height"], out["width"]) == size
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    want = cv2.resize(rgb, None, None, fx=s, fy=s, interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(out["image"].numpy().transpose(1, 2, 0), want)
    # Detectron2's mapper (PIL, rounded target size) gives other pixels for most of the picture
    d2 = DatasetMapper(is_train=False, augmentations=[T.ResizeShortestEdge(short, max_size)],
                       image_format="RGB")({"file_name": str(tmp_path / "a.png"), "image_id": 7})
    if tuple(d2["image"].shape) == tuple(out["image"].shape):
        assert (d2["image"] != out["image"]).any(dim=0).float().mean() > 0.05


def test_bgr_format_keeps_opencv_channel_order(tmp_path):
    bgr = np.zeros((32, 48, 3), np.uint8)
    bgr[..., 0] = 200  # blue
    cv2.imwrite(str(tmp_path / "b.png"), bgr)
    rgb_out = mapper(32, 1000)({"file_name": str(tmp_path / "b.png"), "image_id": 1})["image"]
    bgr_out = mapper(32, 1000, image_format="BGR")({"file_name": str(tmp_path / "b.png"),
                                                     "image_id": 1})["image"]
    assert int(rgb_out[2].min()) == 200 and int(rgb_out[0].max()) == 0
    assert int(bgr_out[0].min()) == 200 and int(bgr_out[2].max()) == 0


def test_default_is_detectron2s_mapper(tmp_path):
    picture(tmp_path / "c.png", 60, 90)
    record = {"file_name": str(tmp_path / "c.png"), "image_id": 3}
    ours = mapper(48, 100, opencv_resize=False)(dict(record))
    d2 = DatasetMapper(is_train=False, augmentations=[T.ResizeShortestEdge(48, 100)],
                       image_format="RGB")(dict(record))
    assert torch.equal(ours["image"], d2["image"])


def test_errors_name_the_file_and_the_setting(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        mapper(800, 1333)({"file_name": str(tmp_path / "missing.jpg"), "image_id": 1})
    picture(tmp_path / "d.png", 40, 50)
    with pytest.raises(Exception, match="d.png"):  # Detectron2's size check names the file
        mapper(800, 1333)({"file_name": str(tmp_path / "d.png"), "image_id": 1, "height": 41,
                           "width": 50})
    with pytest.raises(ValueError, match="one test size"):
        EODTestMapper(is_train=False, augmentations=[T.ResizeShortestEdge((640, 800), 1333, "choice")],
                      image_format="RGB", opencv_resize=True)
