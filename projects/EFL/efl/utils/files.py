"""Files that readers see complete or not at all (checkpoints, records, cached annotation views)."""
import os
import tempfile

__all__ = ["atomic_write"]


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
