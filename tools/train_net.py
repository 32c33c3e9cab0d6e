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
import os
import shutil
import sys
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
from detectron2.config import LazyConfig, instantiate
from detectron2.data import MetadataCatalog
from detectron2.engine import default_argument_parser, default_writers, hooks
from detectron2.evaluation import inference_on_dataset, print_csv_format
from detectron2.utils import comm
from omegaconf import OmegaConf

from efl.compat import UnreadableImageError
from efl.data.dataset_checks import DatasetCheckError
from efl.data.frequency import class_frequency_groups
from efl.engine import (
    AtomicDetectionCheckpointer,
    EqualizedLossStatistics,
    add_full_model_gradient_clipping,
    build_trainer,
    create_ddp_model,
    launch,
    write_final_results,
)
from efl.engine.bias_decay import check_bias_decay
from efl.engine.bias_ledger import build_bias_ledger
from efl.engine.buffer_sync import BufferSyncHook
from efl.engine.checkpoint import CheckpointError
from efl.engine.divergence import TrainingDivergedError, explain_divergence
from efl.engine.ema import build_ema_hooks
from efl.engine.ground_truth import GroundTruthError, audit_evaluation_ground_truth, describe_audit
from efl.engine.no_aug_switch import build_no_aug_switch
from efl.engine.overrides import OVERRIDE_HELP, OverrideError, apply_overrides
from efl.engine.results import drop_metrics_from, evaluation_output_dir
from efl.engine.run_setup import FILE_ONLY, setup_run
from efl.losses import find_equalized_losses

logger = logging.getLogger("detectron2")

# Keys of `train` this tool reads, with their defaults for configs that do not set them.
TRAIN_DEFAULTS = {
    # True: training from train.init_checkpoint skips (and lists) weights of another shape, e.g.
    # a classifier for another class count; False: such a weight is an error.
    "init_checkpoint_partial": False,
    # "error": an evaluation set whose annotation file has boxes of zero area or entirely outside
    # their image is refused; "report": evaluated anyway (against the file as written).
    "eval_invalid_boxes": "error",
}

# Errors about the user's input whose message says everything: printed without a traceback.
USER_ERRORS = (OverrideError, CheckpointError, GroundTruthError, DatasetCheckError, TrainingDivergedError,
               UnreadableImageError)

EPILOG = f"""
Examples (from the repository root, with the project's environment):
  .venv/bin/python tools/train_net.py --config-file configs/demo/efl_synthetic_small.py
  .venv/bin/python tools/train_net.py --config-file configs/efl_improved_baseline_r50_2x_rfs.py --num-gpus 8
  .venv/bin/python tools/train_net.py --config-file CFG --resume
  .venv/bin/python tools/train_net.py --config-file CFG --eval-only train.init_checkpoint=OUT/model_final.pth
  multi-machine: --num-machines 2 --machine-rank {{0,1}} --dist-url tcp://HOST:PORT

{OVERRIDE_HELP}

Keys of `train` read by this tool beyond Detectron2's (defaults when the config lacks them):
  train.init_checkpoint_partial=False  True: skip (and list) init_checkpoint weights of another shape
  train.eval_invalid_boxes=error       report: evaluate a set whose json has boxes of zero area or
                                       outside their image (the evaluator counts them as written)

--eval-only needs weights: train.init_checkpoint=PATH, or --resume with a checkpoint in
train.output_dir. It writes into <train.output_dir>/eval/<dataset>-<checkpoint>-<hash>/, <hash>
from the checkpoint's absolute path (checkpoints of one name from different runs do not collide);
a failed evaluation leaves no folder.
"""


def build_parser():
    parser = default_argument_parser(epilog=EPILOG)
    parser.add_argument("--verbose", action="store_true",
                        help="also print the environment, the config file and the model on the "
                             "console (they are always in log.txt)")
    return parser


def load_config(args):
    """The config of ``args.config_file`` with TRAIN_DEFAULTS filled in and ``args.opts`` applied
    (an override of a key the config does not have is an OverrideError)."""
    if not os.path.isfile(args.config_file):
        raise FileNotFoundError(f"--config-file {args.config_file!r} does not exist")
    cfg = LazyConfig.load(args.config_file)
    for key, value in TRAIN_DEFAULTS.items():
        if key not in cfg.train:
            cfg.train[key] = value
    return apply_overrides(cfg, args.opts)


def _is_local(path):
    return "://" not in str(path)


def evaluation_checkpoint(cfg, args):
    """The weights an --eval-only run evaluates: this run's last checkpoint with --resume (when
    there is one), else train.init_checkpoint; no weights at all is an error."""
    last = os.path.join(cfg.train.output_dir, "last_checkpoint")
    if args.resume and os.path.isfile(last):
        with open(last) as f:
            return os.path.join(cfg.train.output_dir, f.read().strip())
    if not cfg.train.init_checkpoint:
        raise CheckpointError(
            "--eval-only needs weights: set train.init_checkpoint=PATH"
            + (f" (--resume found no last_checkpoint in {cfg.train.output_dir})" if args.resume else
               ", or pass --resume to evaluate the last checkpoint in train.output_dir"))
    return cfg.train.init_checkpoint


def check_weights(cfg, args):
    """Fail before anything is loaded when the weights the run would read do not exist."""
    if args.eval_only:
        path, what = evaluation_checkpoint(cfg, args), "the checkpoint to evaluate"
    elif cfg.train.init_checkpoint and not (
            args.resume and os.path.isfile(os.path.join(cfg.train.output_dir, "last_checkpoint"))):
        path, what = cfg.train.init_checkpoint, "train.init_checkpoint"
    else:
        return
    if _is_local(path) and not os.path.isfile(path):
        raise CheckpointError(f"{what} {path} does not exist")


def eval_only_output_dir(cfg, args):
    """Where an --eval-only run writes its records (efl.engine.results.evaluation_output_dir)."""
    return evaluation_output_dir(cfg.train.output_dir, test_dataset_names(cfg), evaluation_checkpoint(cfg, args))


def first_missing_directory(path):
    """The topmost of ``path`` and its parents that does not exist yet (None when ``path`` does):
    what a run writing into ``path`` creates, and a failed run removes again."""
    path, missing = os.path.abspath(path), None
    while not os.path.exists(path):
        path, missing = os.path.dirname(path), path
    return missing


def test_dataset_names(cfg):
    return OmegaConf.select(cfg, "dataloader.test.dataset.names", default="test")


def has_evaluator(cfg):
    return OmegaConf.select(cfg, "dataloader.evaluator", default=None) is not None


def do_test(cfg, model, ground_truth=()):
    if not has_evaluator(cfg):
        return {}
    ret = inference_on_dataset(model, instantiate(cfg.dataloader.test), instantiate(cfg.dataloader.evaluator))
    if comm.is_main_process():
        print_csv_format(ret)
        for report in ground_truth:
            logger.info(describe_audit(report))
    return ret


def train_dataset_name(cfg):
    """The first training dataset name, or None when the config does not name one."""
    names = OmegaConf.select(cfg, "dataloader.train.dataset.names", default=None)
    if isinstance(names, str):
        return names
    if names is not None and len(names) and isinstance(names[0], str):
        return names[0]
    return None


def statistics_hook(cfg, model):
    losses = find_equalized_losses(model)
    if not losses:
        return None
    name = train_dataset_name(cfg)
    metadata = MetadataCatalog.get(name) if name else None
    groups = class_frequency_groups(metadata, losses[0][1].num_classes)
    return EqualizedLossStatistics(model, class_groups=groups, period=cfg.train.log_period,
                                   output_dir=cfg.train.output_dir)


def do_train(args, cfg, ground_truth=()):
    model = instantiate(cfg.model)
    logger.info(f"Model:\n{model}", extra=FILE_ONLY)
    model.to(cfg.train.device)

    cfg.optimizer.params.model = model
    # configs without train.clip_grad (not composed from configs/common/train.py) do not clip
    clip_grad = OmegaConf.select(cfg, "train.clip_grad", default=None) or {"enabled": False}
    optim = add_full_model_gradient_clipping(instantiate(cfg.optimizer), **clip_grad)
    check_bias_decay(model, optim, cfg.train.max_iter, equalized_losses=find_equalized_losses(model))

    train_loader = instantiate(cfg.dataloader.train)
    model = create_ddp_model(model, **cfg.train.ddp)
    trainer = build_trainer(model, train_loader, optim, amp_enabled=cfg.train.amp.enabled)
    # The trainer checkpoints its iteration, the optimizer (SimpleTrainer.state_dict) and the LR
    # scheduler (hooks.LRScheduler around Detectron2's LRMultiplier); the model's state_dict
    # carries the EFL statistics buffers.
    checkpointer = AtomicDetectionCheckpointer(
        model, cfg.train.output_dir, trainer=trainer,
        load_mode="partial" if cfg.train.init_checkpoint_partial else "init")

    # YOLOX-IP: an EMA of the weights (saved as checkpointable "ema", used for evaluation) and
    # the switch to the no-augmentation loader for the last epochs; nothing without train.ema /
    # train.no_aug_epochs. The EMA hook runs before the checkpointer and the evaluation.
    ema_hooks, evaluation_weights = build_ema_hooks(cfg, model, checkpointer)
    # Several processes: each keeps its own BN statistics (broadcast_buffers=False); before a
    # checkpoint or an evaluation they are averaged and rank 0's state is given to every process,
    # so that the evaluation scores exactly the weights that are saved.
    buffer_sync = BufferSyncHook(model, ema=checkpointer.checkpointables.get("ema"),
                                 periods=(OmegaConf.select(cfg, "train.checkpointer.period", default=0),
                                          OmegaConf.select(cfg, "train.eval_period", default=0)))
    last_results = {}

    def test_and_keep():
        last_results.clear()
        with evaluation_weights():
            last_results.update(do_test(cfg, model, ground_truth))
        return dict(last_results)

    trainer.register_hooks([
        hooks.IterationTimer(),
        hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
        *ema_hooks,
        buffer_sync,
        build_no_aug_switch(cfg),
        statistics_hook(cfg, model),
        build_bias_ledger(cfg, model, optim),
        hooks.PeriodicCheckpointer(checkpointer, **cfg.train.checkpointer) if comm.is_main_process() else None,
        hooks.EvalHook(cfg.train.eval_period, test_and_keep),
    ])

    checkpointer.resume_or_load(cfg.train.init_checkpoint, resume=args.resume)
    # The checkpoint's iteration is the last finished one.
    start_iter = trainer.iter + 1 if args.resume and checkpointer.has_checkpoint() else 0
    if comm.is_main_process():
        # A resumed run repeats the iterations logged after its checkpoint: their records go
        # before the writers (which append) open metrics.json.
        if start_iter:
            dropped = drop_metrics_from(cfg.train.output_dir, start_iter)
            if dropped:
                logger.info(f"Removed {dropped} records of iterations >= {start_iter} from metrics.json: "
                            "the resumed run logs them again")
        trainer.register_hooks([hooks.PeriodicWriter(
            default_writers(cfg.train.output_dir, cfg.train.max_iter), period=cfg.train.log_period)])
    try:
        trainer.train(start_iter, cfg.train.max_iter)
    except FloatingPointError as e:
        # Detectron2 has logged the traceback; say what happened and what to do instead.
        raise explain_divergence(e, iteration=trainer.iter, storage=trainer.storage,
                                 checkpointer=checkpointer, lr=optim.param_groups[0]["lr"]) from None
    return last_results


def do_eval(cfg, checkpoint, ground_truth=()):
    model = instantiate(cfg.model)
    model.to(cfg.train.device)
    model = create_ddp_model(model)
    # Evaluation accepts only weights that fit the model exactly; with train.ema it evaluates
    # the checkpoint's EMA weights (the model's own, with a warning, when the file has none).
    checkpointer = AtomicDetectionCheckpointer(model, load_mode="strict")
    _, evaluation_weights = build_ema_hooks(cfg, model, checkpointer)
    checkpointer.load(checkpoint)
    with evaluation_weights():
        return do_test(cfg, model, ground_truth)


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
    setup_run(cfg, args, verbose=args.verbose)
    if cuda_missing:
        logger.warning("train.device asks for CUDA, which is not available: running on CPU")

    try:
        ground_truth = []
        if has_evaluator(cfg):
            ground_truth = audit_evaluation_ground_truth(
                test_dataset_names(cfg), invalid_boxes=cfg.train.eval_invalid_boxes)
            for report in ground_truth:
                logger.info(describe_audit(report))
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
