"""Equalized Focal Loss for long-tailed one-stage detection, on Detectron2."""
# Importing efl.compat applies the fixes that must precede any import of detectron2, in every
# process (including the children that torch.multiprocessing spawns), so it comes first.
from . import compat as _compat  # noqa: F401

__version__ = "0.1.0"
