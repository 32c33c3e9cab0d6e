"""Equalized Focal Loss for long-tailed one-stage detection, on Detectron2."""
# The compatibility fixes must run before anything imports detectron2, in every process
# (including the children that torch.multiprocessing spawns), so they live here.
from . import compat as _compat

_compat.apply()

__version__ = "0.1.0"
