"""A DetectionCheckpointer whose files are either complete or absent."""
import os
import tempfile

import torch
from detectron2.checkpoint import DetectionCheckpointer

__all__ = ["AtomicDetectionCheckpointer", "atomic_write"]


def atomic_write(path, write_fn, mode="wb"):
    """Write ``path`` through ``write_fn(file)`` so that readers see the old file or the new one.

    The data go to a temporary file in the same directory (same file system, so the rename is
    atomic), are flushed and fsynced, then ``os.replace`` puts the file in place and the
    directory entry is fsynced. A job killed mid-write leaves at most a stray ``.tmp`` file.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp_path = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        # mkstemp creates the file 0600; give it the permissions open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        with os.fdopen(fd, mode) as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class AtomicDetectionCheckpointer(DetectionCheckpointer):
    """:class:`DetectionCheckpointer` that writes checkpoints and ``last_checkpoint`` atomically.

    fvcore writes the checkpoint in place and then points ``last_checkpoint`` at it, so a job
    killed during ``torch.save`` leaves a truncated file that ``--resume`` later fails to load.
    Here a checkpoint only appears under its name once it is complete, and ``last_checkpoint``
    only ever names a complete file. Remote (non-local) save directories fall back to fvcore.
    """

    def _is_local(self):
        return os.path.isdir(self.save_dir)

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


def load_trained_model(config_file, checkpoint, overrides=()):
    """``(cfg, model)``: the model of a LazyConfig file (with key=value ``overrides``), in eval
    mode, with the weights and loss statistics of ``checkpoint``."""
    from detectron2.config import LazyConfig, instantiate

    cfg = LazyConfig.apply_overrides(LazyConfig.load(config_file), list(overrides))
    model = instantiate(cfg.model).eval()
    DetectionCheckpointer(model).load(checkpoint)
    return cfg, model
