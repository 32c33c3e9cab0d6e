"""Equalized Focal Loss for long-tailed one-stage detection, on Detectron2."""
# Importing efl.compat applies the fixes that must precede any import of detectron2, in every
# process (including the children that torch.multiprocessing spawns), so it comes first. Without
# Detectron2 (or fvcore) installed there is nothing to fix, and the losses (efl.losses: torch
# only) are usable as a library on their own (README, "The losses").
try:
    from . import compat as _compat  # noqa: F401
except ModuleNotFoundError as e:
    if (e.name or "").split(".")[0] not in ("detectron2", "fvcore"):
        raise

__version__ = "0.1.0"
