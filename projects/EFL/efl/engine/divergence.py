"""The message of a training run whose loss became NaN or Inf.

A diverged run stops with the loss's ``FloatingPointError`` (non-finite logits) or Detectron2's
(non-finite loss sum), which name neither the iteration nor what to do next. The message built
here says at which iteration it happened, what the losses were on the way there, and which
checkpoint was written before it (docs/train_net.md, "Divergence").
"""
import math
import os
import re

__all__ = ["TrainingDivergedError", "explain_divergence"]


class TrainingDivergedError(FloatingPointError):
    """A training run stopped by a non-finite loss; the message is meant for the user as is."""


def _loss_history(storage, limit=4):
    """``"loss_cls 1.1 (iter 0) -> 1.4e+05 (iter 1)"`` per loss key of the storage."""
    if storage is None:
        return []
    lines = []
    for key in sorted(storage.histories()):
        if "loss" not in key:
            continue
        values = storage.histories()[key].values()[-limit:]  # [(value, iteration)]
        if values:
            lines.append(f"{key}: " + " -> ".join(f"{v:.4g} (iter {int(i)})" for v, i in values))
    return lines


def _last_checkpoint(checkpointer):
    if checkpointer is None or not checkpointer.has_checkpoint():
        return None, None
    path = checkpointer.get_checkpoint_file()
    match = re.fullmatch(r".*_(\d+)\.pth", os.path.basename(path))
    return path, int(match.group(1)) if match else None


def explain_divergence(error, *, iteration, storage=None, checkpointer=None, lr=None):
    """A :class:`TrainingDivergedError` for ``error`` (the ``FloatingPointError`` of the failed
    step).

    Args:
        error: the exception the training step raised.
        iteration: the iteration whose step raised it (``trainer.iter``).
        storage: the trainer's ``EventStorage``, for the losses of the iterations before.
        checkpointer: the run's checkpointer, for the last checkpoint written (None: not known).
        lr: the learning rate of that iteration, if known.
    """
    lines = [f"Training diverged at iteration {iteration}: a loss became NaN or Inf.",
             f"  cause: {str(error).strip()}"]
    history = _loss_history(storage)
    if history:
        lines.append("  losses logged before it: " + "; ".join(history))
    if lr is not None and math.isfinite(lr):
        lines.append(f"  learning rate at that iteration: {lr:.4g}")
    path, ckpt_iter = _last_checkpoint(checkpointer)
    if path is None:
        lines.append("  No checkpoint had been written: the run has to start again.")
    else:
        at = f" (iteration {ckpt_iter})" if ckpt_iter is not None else ""
        lines.append(f"  The last checkpoint, {path}{at}, was written before the divergence; if the "
                     "losses above were already growing then, start from an earlier one.")
    lines.append("  Lower optimizer.lr, or check train.clip_grad and the data of these iterations, "
                 "then train again (--resume continues from the last checkpoint).")
    return TrainingDivergedError("\n".join(lines))
