"""The loggers of a run, as Detectron2's ``default_setup`` sets them up but with a quiet console
(``efl.engine.defaults.default_setup`` calls it).

Detectron2's ``default_setup`` prints the environment dump, the config file (coloured with
pygments, whose escape codes also land in ``log.txt``) and, from the training script, the model:
a few hundred lines before the first iteration. Here they go to ``log.txt`` only, as plain text,
unless ``verbose``; the console keeps the run's progress, warnings and results
(docs/train_net.md, "Console and log.txt").
"""
import logging
import re
import sys

from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

__all__ = ["FILE_ONLY", "setup_run_loggers"]

# logger.info(..., extra=FILE_ONLY): the record goes to log.txt, not to the console.
FILE_ONLY = {"efl_file_only": True}

# Messages of Detectron2 that are records rather than progress: the per-class instance table
# (1,203 rows for LVIS) is printed when a dataset is loaded, and the name-matching table (a row per
# weight, ~60 lines for a ResNet-50) when weights converted from torchvision are loaded.
_FILE_ONLY_PREFIXES = ("Distribution of instances among all", "Following weights matched with")

# The loggers a run writes through: Detectron2's, fvcore's (checkpointer) and the project's.
LOGGER_NAMES = ("detectron2", "fvcore", "efl")


# Terminal colour codes: Detectron2 colours some messages (termcolor, when the console is a
# terminal), and log.txt must stay plain text.
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class _PlainFormatter(logging.Formatter):
    def format(self, record):
        return _ANSI_ESCAPE.sub("", super().format(record))


class _ConsoleFilter(logging.Filter):
    def filter(self, record):
        if getattr(record, "efl_file_only", False):
            return False
        return not (isinstance(record.msg, str) and record.msg.startswith(_FILE_ONLY_PREFIXES))


def setup_run_loggers(output_dir, *, verbose):
    """Detectron2's loggers of a run (console on the main process, ``log.txt`` in ``output_dir``
    on every process) for Detectron2's, fvcore's and the project's records, with the console
    filter (unless ``verbose``) and a plain-text ``log.txt``. Returns the "detectron2" logger."""
    rank = comm.get_rank()
    loggers = [setup_logger(output_dir, distributed_rank=rank, name=name) for name in LOGGER_NAMES]
    for logger in loggers:
        for handler in logger.handlers:
            if getattr(handler, "stream", None) is sys.stdout:
                if not verbose and not any(isinstance(f, _ConsoleFilter) for f in handler.filters):
                    handler.addFilter(_ConsoleFilter())
            elif not isinstance(handler.formatter, _PlainFormatter):  # log.txt
                handler.setFormatter(_PlainFormatter(handler.formatter._fmt, handler.formatter.datefmt))
    return loggers[0]
