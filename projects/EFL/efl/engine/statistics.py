"""Per-frequency-group summaries of the EFL/EQFL gradient statistics, for logs and TensorBoard."""
import logging
import os

import torch
from detectron2.engine import HookBase
from detectron2.utils import comm

from ..losses import find_equalized_losses
from ..utils.distributed import unwrap_model
from ..utils.files import atomic_write

__all__ = ["EqualizedLossStatistics"]

logger = logging.getLogger(__name__)


class EqualizedLossStatistics(HookBase):
    """Every ``period`` iterations, puts the mean g_j and mean γ_j of each frequency group into
    the event storage (so TensorBoard and metrics.json get them) and logs them; at the end of
    training, saves each process's raw buffers to ``<output_dir>/efl_statistics/rank<r>.pth``
    (they must be identical on every rank: the loss all-reduces its statistics).

    Scalars are named ``efl/g_<group>`` and ``efl/gamma_<group>`` (``efl<i>/...`` when the model
    holds several such losses, ``i`` in the order logged at the start). The names must not contain
    "loss": Detectron2's console printer shows every such key as a 20-value median, which for a
    value put once per period is a stale one; the hook's own log line shows the current value.
    """

    def __init__(self, model, *, class_groups, period, output_dir=None):
        """
        Args:
            model: the trained model (may be wrapped in DDP).
            class_groups: ``{group name: (K,) int64 class indices}``, see
                :func:`efl.data.frequency.class_frequency_groups`.
            period: iterations between two summaries.
            output_dir: where the per-rank buffers go at the end; None to skip.
        """
        self._losses = find_equalized_losses(unwrap_model(model))
        self._class_groups = class_groups
        self._period = int(period)
        self._output_dir = output_dir
        if not self._losses:
            logger.warning("EqualizedLossStatistics: the model holds no EqualizedLossBase module")
        self._prefixes = ["efl"] if len(self._losses) == 1 else [f"efl{i}" for i in range(len(self._losses))]
        if len(self._losses) > 1:
            logger.info("EFL statistics: " + ", ".join(
                f"{p} = {name}" for p, (name, _) in zip(self._prefixes, self._losses)))

    def summaries(self):
        """``{scalar name: value}`` for the current buffers."""
        out = {}
        for prefix, (_, loss) in zip(self._prefixes, self._losses):
            g = loss.pos_neg.detach().float().cpu()  # (C,)
            gamma = loss.focusing_factors().float().cpu()  # (C,)
            for group, idx in self._class_groups.items():
                if idx.numel():
                    out[f"{prefix}/g_{group}"] = float(g[idx].mean())
                    out[f"{prefix}/gamma_{group}"] = float(gamma[idx].mean())
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
            logger.info(f"iter: {self.trainer.iter}  {self._heading()}  "
                        + "  ".join(f"{k}: {v:.4f}" for k, v in scalars.items()))

    def _heading(self):
        # scale_factor 0 is focal loss / QFL: g_j is measured but changes nothing (γ_j = γ_b)
        if all(float(loss.scale_factor) == 0 for _, loss in self._losses):
            return "gradient statistics (scale_factor 0, focal loss: measured, not used)"
        return "EFL statistics"

    def after_train(self):
        if not self._output_dir or not self._losses:
            return
        directory = os.path.join(self._output_dir, "efl_statistics")
        os.makedirs(directory, exist_ok=True)
        buffers = {name: loss.statistics_state() for name, loss in self._losses}
        path = os.path.join(directory, f"rank{comm.get_rank()}.pth")
        # trainer.iter is max_iter after a finished run; record the last iteration done, as the
        # checkpoints do.
        state = {"iteration": self.trainer.iter - 1, "buffers": buffers}
        atomic_write(path, lambda f: torch.save(state, f))
