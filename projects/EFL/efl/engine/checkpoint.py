"""A DetectionCheckpointer whose files are either complete or absent, which refuses weights that
do not fit the model, and which resumes past an unreadable last checkpoint (docs/train_net.md,
"Weights")."""
import os
import pickle
import re
import zipfile

import torch
from detectron2.checkpoint import DetectionCheckpointer

from ..utils.files import atomic_write

__all__ = [
    "AtomicDetectionCheckpointer",
    "CheckpointError",
    "is_local_path",
]

# What torch.load raises for a truncated or otherwise unreadable file.
_UNREADABLE = (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError)
_CHECKPOINT_NAME = re.compile(r"model_(\d+|final)\.pth")
# The temporary files of atomic_write for a checkpoint or last_checkpoint (a write that was killed).
_TEMPORARY_NAME = re.compile(r"\.(model_(\d+|final)\.pth|last_checkpoint)\..+\.tmp")

# How loaded weights must fit the model:
#   "strict"  evaluation and --resume: every weight of the model comes from the file with its
#             shape, and the file holds nothing else;
#   "init"    training from train.init_checkpoint: a weight of another shape is an error, weights
#             missing on either side are listed (an ImageNet backbone has no detector head);
#   "partial" train.init_checkpoint_partial=True: weights of another shape are skipped and listed.
# In every mode a file of which no weight fits the model is an error.
LOAD_MODES = ("strict", "init", "partial")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or whose weights do not fit the model."""


def is_local_path(path):
    """False for a URL (``https://``, ``s3://``...: fvcore's PathManager handles those)."""
    return "://" not in str(path)


def _training_state_keys(model):
    """State-dict keys of the buffers that modules declare as training state, not read by
    inference, in their ``training_state_buffers`` (e.g. the EFL/EQFL statistics)."""
    return {f"{name}.{buffer}" if name else buffer
            for name, module in model.named_modules()
            for buffer in getattr(module, "training_state_buffers", ())}


def _listing(keys, limit=20):
    keys = list(keys)
    more = f", ... ({len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(str(k) for k in keys[:limit]) + more


class AtomicDetectionCheckpointer(DetectionCheckpointer):
    """:class:`DetectionCheckpointer` that writes checkpoints and ``last_checkpoint`` atomically,
    checks that loaded weights fit the model, and resumes past an unreadable last checkpoint.

    fvcore writes the checkpoint in place and then points ``last_checkpoint`` at it, so a job
    killed during ``torch.save`` leaves a truncated file that ``--resume`` later fails to load.
    Here a checkpoint only appears under its name once it is complete, and ``last_checkpoint``
    only ever names a complete file. Remote (non-local) save directories fall back to fvcore.

    Detectron2 only logs "Skip loading parameter" for a weight whose shape differs from the
    model's and loads the rest: a 12-class checkpoint evaluated with a 48-class config then
    scores a random classifier. Here the load mode (``LOAD_MODES``) decides: evaluation and
    resuming accept only an exact fit, training from ``train.init_checkpoint`` refuses other
    shapes unless the partial mode was asked for, and what was not loaded is listed.
    """

    def __init__(self, model, save_dir="", *, load_mode="init", **kwargs):
        """
        Args:
            model: the model (may be wrapped in DDP).
            save_dir: where checkpoints are written and ``--resume`` looks for them.
            load_mode: how :meth:`load` checks the weights of a file that is not this run's own
                checkpoint, one of ``LOAD_MODES`` (resuming is always "strict").
            kwargs: ``save_to_disk`` and the checkpointables, as for DetectionCheckpointer.
        """
        if load_mode not in LOAD_MODES:
            raise ValueError(f"load_mode must be one of {LOAD_MODES}, got {load_mode!r}")
        super().__init__(model, save_dir, **kwargs)
        self.load_mode = load_mode
        self._mode = load_mode
        self._path = None

    # ---- writing ----
    def _is_local(self):
        return is_local_path(self.save_dir) and os.path.isdir(self.save_dir)

    def save(self, name, **kwargs):
        if not self.save_dir or not self.save_to_disk:
            return
        if not self._is_local():
            return super().save(name, **kwargs)
        data = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        basename = f"{name}.pth"
        save_file = os.path.join(self.save_dir, basename)
        self.logger.info(f"Saving checkpoint to {save_file}")
        atomic_write(save_file, lambda f: torch.save(data, f))
        self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename):
        if not self._is_local():
            return super().tag_last_checkpoint(last_filename_basename)
        save_file = os.path.join(self.save_dir, "last_checkpoint")
        atomic_write(save_file, lambda f: f.write(last_filename_basename), mode="w")

    # ---- reading ----
    def load(self, path, checkpointables=None, *, mode=None):
        """Load ``path`` (see fvcore's ``Checkpointer.load``), checking its weights with ``mode``
        (default: the constructor's ``load_mode``). Raises :class:`CheckpointError` naming the
        file when it is missing, unreadable, or does not fit the model."""
        if path and "://" not in path and not os.path.isfile(path):
            raise CheckpointError(f"checkpoint {path} does not exist")
        self._mode, self._path = mode or self.load_mode, path
        try:
            return super().load(path, checkpointables=checkpointables)
        finally:
            self._mode, self._path = self.load_mode, None

    def _load_file(self, filename):
        try:
            return super()._load_file(filename)
        except _UNREADABLE as e:
            raise CheckpointError(f"checkpoint {filename} cannot be read (truncated or not a "
                                  f"checkpoint?): {type(e).__name__}: {e}") from e

    def _load_model(self, checkpoint):
        incompatible = super()._load_model(checkpoint)
        self._check_fit(incompatible, checkpoint)
        return incompatible

    def _check_fit(self, incompatible, checkpoint):
        source, mode = self._path or "the checkpoint", self._mode
        model_keys = set(self.model.state_dict())
        shapes = [f"{k} {tuple(c)} in the file, {tuple(m)} in the model"
                  for k, c, m in incompatible.incorrect_shapes]
        missing = list(incompatible.missing_keys)
        if mode == "strict":
            # Training-state buffers (the EFL statistics); a file without them still evaluates.
            missing = [k for k in missing if k not in _training_state_keys(self.model)]
        unexpected = list(incompatible.unexpected_keys)
        loaded = model_keys - set(incompatible.missing_keys) - {k for k, _, _ in incompatible.incorrect_shapes}
        if not loaded:
            raise CheckpointError(f"{source}: none of its weights fits the model (first model keys: "
                                  f"{_listing(sorted(model_keys), 5)}; first file keys: "
                                  f"{_listing(unexpected, 5)}); is it a checkpoint of this config?")
        if shapes and mode != "partial":
            hint = ("a checkpoint of another model or class count? evaluate it with its own config"
                    if mode == "strict" else
                    "set train.init_checkpoint_partial=True to skip these weights on purpose")
            raise CheckpointError(f"{source}: {len(shapes)} weight(s) have another shape than the "
                                  f"model's: {_listing(shapes, 5)} ({hint})")
        if mode == "strict" and (missing or unexpected):
            raise CheckpointError(
                f"{source} does not match the model: "
                + "; ".join(s for s in (
                    f"{len(missing)} model weight(s) not in the file: {_listing(missing)}" if missing else "",
                    f"{len(unexpected)} file weight(s) not in the model: {_listing(unexpected)}"
                    if unexpected else "") if s))
        if mode != "strict":
            self.logger.info(f"Loaded {len(loaded)} of {len(model_keys)} model weights from {source}")
            if shapes:
                self.logger.warning(f"Skipped {len(shapes)} weight(s) of another shape (partial load): "
                                    + _listing(shapes, 1000))

    def _log_incompatible_keys(self, incompatible):
        # Detectron2's message for skipped shapes reads as if loading went on normally; shapes are
        # reported (or refused) by _check_fit.
        super()._log_incompatible_keys(incompatible._replace(incorrect_shapes=[]))

    # ---- resuming ----
    def resume_or_load(self, path, *, resume=True):
        """Resume from this run's last readable checkpoint when ``resume`` and one exists (all
        checkpointables, exact fit), else load the model weights of ``path`` (``load_mode``).

        A last checkpoint that cannot be read (e.g. truncated by a full disk or a copy) is named
        in a warning and the newest readable earlier one is used."""
        if resume:
            self._remove_temporary_files()
        if resume and self.has_checkpoint():
            return self._resume(self.get_checkpoint_file())
        return self.load(path, checkpointables=[])

    def _remove_temporary_files(self):
        """Remove what a run killed during a checkpoint write left (``atomic_write``'s temporary
        file): the resumed run writes its checkpoints anew."""
        if not (self.save_dir and self.save_to_disk and self._is_local()):
            return
        for name in sorted(os.listdir(self.save_dir)):
            if _TEMPORARY_NAME.fullmatch(name):
                os.remove(os.path.join(self.save_dir, name))
                self.logger.info(f"Removed {name}, left in {self.save_dir} by an interrupted checkpoint write")

    def _resume(self, last):
        candidates = sorted(
            (os.path.join(self.save_dir, f) for f in os.listdir(self.save_dir)
             if _CHECKPOINT_NAME.fullmatch(f) and os.path.join(self.save_dir, f) != last),
            key=lambda p: (os.path.getmtime(p), p), reverse=True) if self._is_local() else []
        errors = []
        for path in [last] + candidates:
            try:
                checkpoint = self._load_file(path)
            except (CheckpointError, FileNotFoundError) as e:
                errors.append(str(e))
                self.logger.warning(f"Cannot resume from {path}: {e}")
                continue
            if path != last:
                self.logger.warning(f"Resuming from {path}, the newest readable checkpoint, instead of "
                                    f"the last one ({last}), which cannot be read")
            return self._load_checkpoint_dict(path, checkpoint)
        raise CheckpointError(f"--resume: no readable checkpoint in {self.save_dir}: "
                              + "; ".join(errors)
                              + ". Remove the unreadable files or train without --resume")

    def _load_checkpoint_dict(self, path, checkpoint):
        # fvcore's load() after _load_file, in the strict mode.
        self.logger.info(f"[Checkpointer] Loading from {path} ...")
        self._mode, self._path = "strict", path
        try:
            incompatible = self._load_model(checkpoint)
        finally:
            self._mode, self._path = self.load_mode, None
        self._log_incompatible_keys(incompatible)
        for key, obj in self.checkpointables.items():
            if key in checkpoint:
                self.logger.info(f"Loading {key} from {path} ...")
                obj.load_state_dict(checkpoint.pop(key))
        return checkpoint

