"""Image read errors that name the file.

detectron2 0.6's ``detection_utils.read_image`` lets PIL's decode error through as it is: a
truncated or corrupt picture stops training with ``OSError: image file is truncated`` (or
``Truncated File Read``), which names no file, from a data-loader worker, mid-epoch. Every mapper
(Detectron2's ``DatasetMapper``, the YOLOX mapper) reads through that function, so here it is
wrapped once: such an error becomes an :class:`UnreadableImageError` naming the file.

A missing file is not wrapped (its FileNotFoundError names the path, and the dataset checks find
missing files when the dataset is loaded).
"""
import functools

__all__ = ["UnreadableImageError", "name_unreadable_images"]


class UnreadableImageError(OSError):
    """An image file that exists but cannot be decoded (truncated, corrupt, not an image)."""


def _naming_the_file(read_image):
    @functools.wraps(read_image)
    def read_image_naming_the_file(file_name, format=None):
        try:
            return read_image(file_name, format)
        except FileNotFoundError:
            raise
        except (OSError, SyntaxError, ValueError) as e:  # PIL's decode errors
            if isinstance(e, UnreadableImageError):
                raise
            raise UnreadableImageError(
                f"image {file_name} cannot be read (truncated or corrupt?): {type(e).__name__}: {e}. "
                "Replace the file, or remove the image from the dataset's annotation file") from e

    read_image_naming_the_file.efl_names_unreadable_images = True
    return read_image_naming_the_file


def name_unreadable_images():
    """Wrap ``detectron2.data.detection_utils.read_image`` (once) so that a decode error names the
    file. Mappers look the function up on the module at each call, so they get the wrapper."""
    from detectron2.data import detection_utils

    if not getattr(detection_utils.read_image, "efl_names_unreadable_images", False):
        detection_utils.read_image = _naming_the_file(detection_utils.read_image)
