#!/usr/bin/env python
"""Train or evaluate an EFL/EQFL detector from a LazyConfig (like Detectron2's
tools/lazyconfig_train_net.py, on top of ``efl.engine``).

    .venv/bin/python tools/train_net.py --config-file configs/efl_improved_baseline_r50_2x_rfs.py --num-gpus 8
    .venv/bin/python tools/train_net.py --config-file CFG --resume          # continue a killed run
    .venv/bin/python tools/train_net.py --config-file CFG --eval-only train.init_checkpoint=model_final.pth
    .venv/bin/python tools/train_net.py --config-file CFG --num-gpus 2      # 2 gloo processes without CUDA

Trailing ``path.key=value`` arguments override the config; a key the config does not have is an
error (see ``--help``). With CUDA, processes use NCCL through Detectron2's launcher; without CUDA,
``--num-gpus N`` runs N CPU processes over gloo. A training run writes its checkpoints, log.txt,
metrics.json, config.yaml and final_results.json into ``train.output_dir``; an ``--eval-only`` run
writes its own into ``<train.output_dir>/eval/<dataset>-<checkpoint>-<hash of its path>/`` (removed
again when the evaluation fails).
"""
import logging
import shutil
import sys
import textwrap
import time

try:
    # compatibility fixes, which must precede detectron2 (also quiets torch's jit.script
    # deprecation warning that fvcore and detectron2 trigger on import)
    import efl  # noqa: F401
except ImportError as e:
    sys.exit(f"{sys.argv[0]}: cannot import the project with {sys.executable} ({e}). Run the tools "
             "with the project's environment, created by `make test` or `make demo`: "
             "`.venv/bin/python tools/train_net.py ...`, or `source .venv/bin/activate` first.")

import torch
from detectron2.engine import default_argument_parser
from detectron2.utils import comm

from efl.compat import UnreadableImageError
from efl.data.dataset_checks import DatasetCheckError
from efl.engine import launch, write_final_results
from efl.engine.checkpoint import CheckpointError
from efl.engine.defaults import (
    audit_ground_truth,
    check_weights,
    default_setup,
    do_eval,
    do_test,  # noqa: F401 (part of the script's API, as in Detectron2's tools)
    do_train,
    eval_only_output_dir,
    evaluation_checkpoint,
    load_config,
    train_options_help,
)
from efl.engine.divergence import TrainingDivergedError
from efl.engine.ground_truth import GroundTruthError
from efl.engine.overrides import OVERRIDE_HELP, OverrideError
from efl.engine.results import first_missing_directory

logger = logging.getLogger("detectron2")

# Errors about the user's input whose message says everything: printed without a traceback.
USER_ERRORS = (OverrideError, CheckpointError, GroundTruthError, DatasetCheckError, TrainingDivergedError,
               UnreadableImageError)


def epilog():
    options = "\n".join(f"  train.{key}={default!r}\n" + textwrap.fill(text, 96, initial_indent=" " * 6,
                                                                        subsequent_indent=" " * 6)
                        for key, default, text in train_options_help())
    return f"""
Examples (from the repository root, with the project's environment):
  .venv/bin/python tools/train_net.py --config-file configs/demo/efl_synthetic_small.py
  .venv/bin/python tools/train_net.py --config-file configs/efl_improved_baseline_r50_2x_rfs.py --num-gpus 8
  .venv/bin/python tools/train_net.py --config-file CFG --resume
  .venv/bin/python tools/train_net.py --config-file CFG --eval-only train.init_checkpoint=OUT/model_final.pth
  multi-machine: --num-machines 2 --machine-rank {{0,1}} --dist-url tcp://HOST:PORT

{OVERRIDE_HELP}

Options of `train` (configs/common/train.py; a config that lacks one gets this default):
{options}

--eval-only needs weights: train.init_checkpoint=PATH, or --resume with a checkpoint in
train.output_dir. It writes into <train.output_dir>/eval/<dataset>-<checkpoint>-<hash>/, <hash>
from the checkpoint's absolute path (checkpoints of one name from different runs do not collide);
a failed evaluation leaves no folder.
"""


def build_parser():
    parser = default_argument_parser(epilog=epilog())
    parser.add_argument("--verbose", action="store_true",
                        help="also print the environment, the config file and the model on the "
                             "console (they are always in log.txt)")
    return parser


def main(args):
    cfg = load_config(args)
    cuda_missing = str(cfg.train.device).startswith("cuda") and not torch.cuda.is_available()
    if cuda_missing:
        cfg.train.device = "cpu"
    checkpoint = None
    if args.eval_only:
        checkpoint = evaluation_checkpoint(cfg, args)
        cfg.train.output_dir = eval_only_output_dir(cfg, args)
        cfg.train.init_checkpoint = checkpoint  # the record names the evaluated weights
    default_setup(cfg, args)
    if cuda_missing:
        logger.warning("train.device asks for CUDA, which is not available: running on CPU")

    try:
        ground_truth = audit_ground_truth(cfg)
        start = time.perf_counter()
        if args.eval_only:
            logger.info(f"Evaluating {checkpoint}; records go to {cfg.train.output_dir}")
            results = do_eval(cfg, checkpoint, ground_truth)
            extra = {"mode": "eval-only", "checkpoint": str(checkpoint)}
        else:
            results = do_train(args, cfg, ground_truth)
            extra = {"mode": "train", "max_iter": int(cfg.train.max_iter)}
    except USER_ERRORS as e:
        logger.error(str(e))
        sys.exit(1)
    if comm.is_main_process() and results:
        path = write_final_results(cfg.train.output_dir, results,
                                   wall_time_s=time.perf_counter() - start,
                                   world_size=comm.get_world_size(), ground_truth=ground_truth, **extra)
        logger.info(f"Final results written to {path}")
    return results


def invoke_main():
    parser = build_parser()
    args = parser.parse_args()
    # Mistyped overrides and missing weights fail here, before processes start or data load.
    try:
        cfg = load_config(args)
        check_weights(cfg, args)
    except (OverrideError, CheckpointError, FileNotFoundError) as e:
        parser.error(str(e))
    # A failed --eval-only leaves no record folder behind (its error is on the console). The
    # launcher's parent process removes it: a failing worker can be killed before it could.
    new_directory = first_missing_directory(eval_only_output_dir(cfg, args)) if args.eval_only else None
    try:
        launch(
            main,
            args.num_gpus,
            num_machines=args.num_machines,
            machine_rank=args.machine_rank,
            dist_url=args.dist_url,
            args=(args,),
        )
    except BaseException:
        if new_directory:
            shutil.rmtree(new_directory, ignore_errors=True)
        raise


if __name__ == "__main__":
    invoke_main()
