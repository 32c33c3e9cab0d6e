"""efl.compat.image_read: a picture that cannot be decoded is an error naming its file, for every
mapper that reads through detectron2's read_image; and detectron2 0.6 still needs it."""
import io

import numpy as np
import pytest
from PIL import Image

from detectron2.data import DatasetMapper, detection_utils
from efl.compat import UnreadableImageError


@pytest.fixture
def truncated_jpeg(tmp_path):
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)).save(buffer, format="JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[:len(buffer.getvalue()) // 2])
    return path


def test_detectron2s_own_read_image_does_not_name_a_truncated_file(truncated_jpeg):
    # still needed: PIL's error, as detectron2 0.6 passes it on, says nothing of the file
    original = detection_utils.read_image.__wrapped__
    with pytest.raises(OSError) as info:
        original(str(truncated_jpeg), format="RGB")
    assert "cut.jpg" not in str(info.value)


def test_a_truncated_jpeg_is_an_error_naming_the_file_in_detectron2s_mapper(truncated_jpeg):
    mapper = DatasetMapper(is_train=True, augmentations=[], image_format="BGR")
    with pytest.raises(UnreadableImageError) as info:
        mapper({"file_name": str(truncated_jpeg), "height": 64, "width": 80, "annotations": []})
    assert str(info.value).startswith(f"image {truncated_jpeg} cannot be read (truncated or corrupt?): OSError: ")


def test_a_file_that_is_no_picture_is_an_error_naming_it(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("not a picture")
    with pytest.raises(UnreadableImageError, match=f"image {path} cannot be read"):
        detection_utils.read_image(str(path), format="RGB")


def test_readable_and_missing_files_behave_as_in_detectron2(tmp_path):
    path = tmp_path / "fine.png"
    pixels = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    Image.fromarray(pixels).save(path)
    assert np.array_equal(detection_utils.read_image(str(path), format="RGB"), pixels)
    with pytest.raises(FileNotFoundError):
        detection_utils.read_image(str(tmp_path / "absent.jpg"))
