"""The start of a run: loggers, the run's record (config.yaml, log.txt) and the seed, like
Detectron2's ``default_setup`` but with a quiet console.

Detectron2's ``default_setup`` prints the environment dump, the config file (coloured with
pygments, whose escape codes also land in ``log.txt``) and, from the training script, the model:
a few hundred lines before the first iteration. Here they go to ``log.txt`` only, as plain text,
unless ``verbose``; the console keeps the run's progress, warnings and results
(docs/train_net.md, "Console and log.txt").
"""
import logging
import os
import re
import sys

import torch
from detectron2.config import LazyConfig
from detectron2.utils import comm
from detectron2.utils.collect_env import collect_env_info
from detectron2.utils.env import seed_all_rng
from detectron2.utils.logger import setup_logger

__all__ = ["FILE_ONLY", "setup_run"]

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


def _setup_loggers(output_dir, *, verbose):
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


def setup_run(cfg, args, *, verbose=False):
    """Create ``cfg.train.output_dir``, set up the loggers (console on the main process,
    ``log.txt`` on every process), record the environment, command line and config in the log
    and ``config.yaml``, seed every process (``train.seed`` + rank, or random when < 0) and set
    cuDNN's benchmark mode for training.

    Args:
        cfg: the LazyConfig of the run, overrides applied.
        args: the parsed command line (logged; ``eval_only`` read).
        verbose: also print the environment, the config file and the model on the console.
    """
    output_dir = cfg.train.output_dir
    if comm.is_main_process() and output_dir:
        os.makedirs(output_dir, exist_ok=True)
    logger = _setup_loggers(output_dir, verbose=verbose)
    logger.info(f"Rank of current process: {comm.get_rank()}. World size: {comm.get_world_size()}")
    logger.info("Environment info:\n" + collect_env_info(), extra=FILE_ONLY)
    logger.info(f"Command line arguments: {args}")
    if getattr(args, "config_file", ""):
        with open(args.config_file) as f:
            logger.info(f"Contents of args.config_file={args.config_file}:\n{f.read()}", extra=FILE_ONLY)
    if comm.is_main_process() and output_dir:
        path = os.path.join(output_dir, "config.yaml")
        LazyConfig.save(cfg, path)
        logger.info(f"Full config saved to {path}")
    seed = cfg.train.get("seed", -1)
    seed_all_rng(None if seed < 0 else seed + comm.get_rank())
    if not getattr(args, "eval_only", False):
        torch.backends.cudnn.benchmark = bool(cfg.train.get("cudnn_benchmark", False))
    return logger
