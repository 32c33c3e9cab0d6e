"""Paths for detectron2's dataset loaders."""
import os

__all__ = ["lvis_image_root"]


def lvis_image_root(image_root):
    """``image_root`` ending in a path separator, as detectron2 0.6's ``load_lvis_json`` needs:
    it builds each image path as ``image_root + split_folder`` (e.g. ``"/data/lvis" +
    "train2017"``), without a separator."""
    return os.path.join(image_root, "")
