"""Per-frequency-group summaries of the EFL/EQFL gradient statistics, for logs and TensorBoard."""
import json
import logging
import os

import torch
from detectron2.engine import HookBase
from detectron2.utils import comm

from ..losses import EqualizedLossBase
from .checkpoint import atomic_write

__all__ = ["EqualizedLossStatistics", "class_frequency_groups", "find_equalized_losses"]

logger = logging.getLogger(__name__)

_GROUP_NAMES = {"r": "rare", "c": "common", "f": "frequent"}
# The metadata field of efl.data's datasets that holds one LVIS frequency letter ("r", "c" or
# "f") per contiguous class id.
_FREQUENCY_FIELD = "class_frequency"


def find_equalized_losses(model):
    """``[(qualified name, module)]`` of every EFL/EQFL module inside ``model`` (DDP or not)."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, EqualizedLossBase)]


def _letters_from_json(json_file):
    with open(json_file) as f:
        categories = json.load(f)["categories"]
    missing = [c["id"] for c in categories if "frequency" not in c]
    if missing:
        raise ValueError(f"{json_file}: categories {missing[:5]} have no 'frequency' field")
    return [c["frequency"] for c in sorted(categories, key=lambda c: c["id"])]


def _letters_from_metadata(metadata):
    fields = metadata.as_dict()
    if fields.get(_FREQUENCY_FIELD) is not None:
        return list(fields[_FREQUENCY_FIELD]), f"metadata field '{_FREQUENCY_FIELD}'"
    thing_classes = fields.get("thing_classes")
    if thing_classes is not None and len(thing_classes) == 1203:
        # Detectron2's built-in LVIS v1 metadata has only the names; its category table has the
        # letters (contiguous ids follow the sorted LVIS ids there too).
        from detectron2.data.datasets.lvis_v1_categories import LVIS_CATEGORIES

        categories = sorted(LVIS_CATEGORIES, key=lambda c: c["id"])
        if [c["synonyms"][0] for c in categories] == list(thing_classes):
            return [c["frequency"] for c in categories], "detectron2's LVIS v1 category table"
    json_file = fields.get("json_file")
    if json_file and os.path.isfile(json_file):
        return _letters_from_json(json_file), json_file
    return None, None


def class_frequency_groups(metadata, num_classes):
    """Contiguous class indices of each LVIS frequency group: ``{"rare": (K_r,), "common": ...,
    "frequent": ...}`` (int64), from the dataset metadata; ``{"all": (C,)}`` when the metadata
    holds no frequency letters.

    Args:
        metadata: a ``detectron2.data.Metadata`` (``MetadataCatalog.get(name)``) or None.
        num_classes: C, the number of classes of the loss.
    """
    letters, source = _letters_from_metadata(metadata) if metadata is not None else (None, None)
    if letters is None:
        return {"all": torch.arange(num_classes)}
    if len(letters) != num_classes:
        raise ValueError(f"{source} lists {len(letters)} class frequencies but the loss has "
                         f"{num_classes} classes (dataset '{metadata.name}')")
    unknown = sorted(set(letters) - set(_GROUP_NAMES))
    if unknown:
        raise ValueError(f"{source}: frequency letters must be 'r', 'c' or 'f', got {unknown}")
    letters = list(letters)
    return {
        name: torch.tensor([i for i, x in enumerate(letters) if x == letter], dtype=torch.int64)
        for letter, name in _GROUP_NAMES.items()
        if letter in letters
    }


class EqualizedLossStatistics(HookBase):
    """Every ``period`` iterations, puts the mean g_j and mean γ_j of each frequency group into
    the event storage (so TensorBoard and metrics.json get them) and logs them; at the end of
    training, saves each process's raw buffers to ``<output_dir>/efl_statistics/rank<r>.pth``
    (they must be identical on every rank: the loss all-reduces its statistics).

    Scalars are named ``<loss>/g_<group>`` and ``<loss>/gamma_<group>``, where ``<loss>`` is the
    loss module's attribute path in the model (DDP's ``module.`` prefix removed).
    """

    def __init__(self, model, *, class_groups, period, output_dir=None):
        """
        Args:
            model: the trained model (may be wrapped in DDP).
            class_groups: ``{group name: (K,) int64 class indices}``, see
                :func:`class_frequency_groups`.
            period: iterations between two summaries.
            output_dir: where the per-rank buffers go at the end; None to skip.
        """
        self._losses = [(name[len("module."):] if name.startswith("module.") else name, m)
                        for name, m in find_equalized_losses(model)]
        self._class_groups = class_groups
        self._period = int(period)
        self._output_dir = output_dir
        if not self._losses:
            logger.warning("EqualizedLossStatistics: the model holds no EqualizedLossBase module")

    def summaries(self):
        """``{scalar name: value}`` for the current buffers."""
        out = {}
        for name, loss in self._losses:
            g = loss.pos_neg.detach().float().cpu()  # (C,)
            gamma = loss.focusing_factors().float().cpu()  # (C,)
            for group, idx in self._class_groups.items():
                if idx.numel():
                    out[f"{name}/g_{group}"] = float(g[idx].mean())
                    out[f"{name}/gamma_{group}"] = float(gamma[idx].mean())
        return out

    def after_step(self):
        next_iter = self.trainer.iter + 1
        if next_iter % self._period != 0 and next_iter != self.trainer.max_iter:
            return
        scalars = self.summaries()
        if not scalars:
            return
        self.trainer.storage.put_scalars(smoothing_hint=False, **scalars)
        if comm.is_main_process():
            logger.info(f"iter: {self.trainer.iter}  EFL statistics  "
                        + "  ".join(f"{k}: {v:.4f}" for k, v in scalars.items()))

    def after_train(self):
        if not self._output_dir or not self._losses:
            return
        directory = os.path.join(self._output_dir, "efl_statistics")
        os.makedirs(directory, exist_ok=True)
        buffers = {name: {k: getattr(loss, k).detach().cpu().clone()
                          for k in ("pos_grad", "neg_grad", "pos_neg")}
                   for name, loss in self._losses}
        path = os.path.join(directory, f"rank{comm.get_rank()}.pth")
        # trainer.iter is max_iter after a finished run; record the last iteration done, as the
        # checkpoints do.
        state = {"iteration": self.trainer.iter - 1, "buffers": buffers}
        atomic_write(path, lambda f: torch.save(state, f))
