"""Everything of a run that reads the config, in the role of Detectron2's
``detectron2/engine/defaults.py``: loading a LazyConfig with the ``train`` schema, the run's setup,
the pre-launch weight check, the evaluation ground-truth audit, the hooks' builders and
``do_train`` / ``do_eval`` / ``do_test`` (docs/train_net.md). The other modules of ``efl.engine``
are config-free Detectron2 extensions with explicit arguments; ``tools/train_net.py`` is the
command line around this module.

The ``train`` schema is declared once, in ``configs/common/train.py``: a config that does not
compose it gets its values for the keys it lacks (`load_config`), and the comments above its keys
are the ``--help`` lines of the options (`train_options_help`).
"""
import contextlib
import copy
import logging
import os
import re
from pathlib import Path

import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.data import MetadataCatalog
from detectron2.engine import default_writers, hooks
from detectron2.evaluation import inference_on_dataset, print_csv_format
from detectron2.utils import comm
from detectron2.utils.collect_env import collect_env_info
from detectron2.utils.env import seed_all_rng
from detectron2.utils.registry import locate
from fvcore.common.checkpoint import Checkpointer
from omegaconf import OmegaConf

from ..compat import create_ddp_model
from ..data.frequency import class_frequency_groups
from ..losses import find_equalized_losses
from .bias_decay import check_bias_decay
from .bias_ledger import ClassifierBiasLedger
from .buffer_sync import BufferSyncHook
from .checkpoint import AtomicDetectionCheckpointer, CheckpointError, is_local_path
from .divergence import explain_divergence
from .ema import ema_hooks
from .ground_truth import audit_evaluation_ground_truth, describe_audit
from .no_aug_switch import NoAugmentationSwitch, no_aug_start_iter
from .optimizer import add_full_model_gradient_clipping
from .overrides import apply_overrides
from .results import drop_metrics_from, evaluation_output_dir
from .run_setup import FILE_ONLY, setup_run_loggers
from .statistics import EqualizedLossStatistics
from .trainers import build_trainer

__all__ = [
    "TRAIN_SCHEMA_FILE", "train_schema", "train_options_help", "with_train_schema", "load_config", "default_setup",
    "evaluation_checkpoint", "check_weights", "eval_only_output_dir", "audit_ground_truth",
    "build_ema_hooks", "build_no_aug_switch", "build_bias_ledger", "build_statistics_hook",
    "do_test", "do_train", "do_eval", "load_trained_model",
]

logger = logging.getLogger("detectron2")

# projects/EFL/efl/engine/defaults.py -> the repository root (the package is installed editable)
TRAIN_SCHEMA_FILE = Path(__file__).resolve().parents[4] / "configs" / "common" / "train.py"


# ---- the config ----

def environment_info():
    """Detectron2's environment report for log.txt. Collecting it imports
    ``torch.utils.cpp_extension``, whose import warns "No CUDA runtime is found" on a CPU machine:
    a console line about CUDA in every CPU run. That logger is quieted for the import only."""
    cpp_extension_logger = logging.getLogger("torch.utils.cpp_extension")
    level = cpp_extension_logger.level
    cpp_extension_logger.setLevel(logging.ERROR)
    try:
        return collect_env_info()
    finally:
        cpp_extension_logger.setLevel(level)

def train_schema():
    """The ``train`` dict of ``configs/common/train.py``: every option, with its default."""
    return LazyConfig.load(str(TRAIN_SCHEMA_FILE)).train


def train_options_help():
    """``[(key, default, help)]`` of the schema's top-level keys, the help being the comment lines
    above the key (or its trailing comment) in ``configs/common/train.py``."""
    defaults, options, comment = OmegaConf.to_object(train_schema()), [], []
    for line in TRAIN_SCHEMA_FILE.read_text().splitlines():
        if re.match(r"^ {4}#", line):  # a comment line above a top-level key
            comment.append(line.strip()[1:].strip())
            continue
        key = re.match(r"^ {4}(\w+)=[^#]*(?:#\s*(.*))?$", line)  # a top-level key, maybe commented
        if key:
            text = " ".join(comment) or (key.group(2) or "")
            options.append((key.group(1), defaults[key.group(1)], text))
        if not line.startswith(" " * 8):  # the lines of a nested dict keep the comment pending
            comment = []
    return options


def with_train_schema(cfg):
    """``cfg`` with the schema's values under the keys its ``train`` lacks (in place; returned)."""
    cfg.train = OmegaConf.merge(train_schema(), cfg.get("train") or {})
    return cfg


def load_config(args):
    """The config of ``args.config_file`` with the schema's values under the keys its ``train``
    lacks and ``args.opts`` applied (an override of a key the config does not have is an
    OverrideError)."""
    if not os.path.isfile(args.config_file):
        raise FileNotFoundError(f"--config-file {args.config_file!r} does not exist")
    return apply_overrides(with_train_schema(LazyConfig.load(args.config_file)), args.opts)


def default_setup(cfg, args):
    """Detectron2's ``default_setup`` with a quiet console (efl.engine.run_setup): create
    ``train.output_dir``, record the environment, command line and config in ``log.txt`` and
    ``config.yaml``, seed every process (``train.seed`` + rank, or random when < 0) and set cuDNN's
    benchmark mode for training. ``args.verbose`` also prints the records on the console."""
    output_dir = cfg.train.output_dir
    if comm.is_main_process() and output_dir:
        os.makedirs(output_dir, exist_ok=True)
    setup_run_loggers(output_dir, verbose=getattr(args, "verbose", False))
    logger.info(f"Rank of current process: {comm.get_rank()}. World size: {comm.get_world_size()}")
    logger.info("Environment info:\n" + environment_info(), extra=FILE_ONLY)
    logger.info(f"Command line arguments: {args}")
    if getattr(args, "config_file", ""):
        with open(args.config_file) as f:
            logger.info(f"Contents of args.config_file={args.config_file}:\n{f.read()}", extra=FILE_ONLY)
    if comm.is_main_process() and output_dir:
        path = os.path.join(output_dir, "config.yaml")
        LazyConfig.save(cfg, path)
        logger.info(f"Full config saved to {path}")
    seed = cfg.train.seed
    seed_all_rng(None if seed < 0 else seed + comm.get_rank())
    if not getattr(args, "eval_only", False):
        torch.backends.cudnn.benchmark = bool(cfg.train.cudnn_benchmark)


# ---- weights ----
def _last_checkpoint(cfg):
    """This run's last checkpoint in ``train.output_dir`` (fvcore's ``last_checkpoint`` file), or None."""
    checkpointer = Checkpointer(torch.nn.Module(), save_dir=cfg.train.output_dir)
    return checkpointer.get_checkpoint_file() if checkpointer.has_checkpoint() else None


def evaluation_checkpoint(cfg, args):
    """The weights an --eval-only run evaluates: this run's last checkpoint with --resume (when
    there is one), else train.init_checkpoint; no weights at all is an error."""
    last = _last_checkpoint(cfg) if args.resume else None
    if last:
        return last
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
    elif cfg.train.init_checkpoint and not (args.resume and _last_checkpoint(cfg)):
        path, what = cfg.train.init_checkpoint, "train.init_checkpoint"
    else:
        return
    if is_local_path(path) and not os.path.isfile(path):
        raise CheckpointError(f"{what} {path} does not exist")


def eval_only_output_dir(cfg, args):
    """Where an --eval-only run writes its records (efl.engine.results.evaluation_output_dir)."""
    return evaluation_output_dir(cfg.train.output_dir, test_dataset_names(cfg), evaluation_checkpoint(cfg, args))


# ---- datasets ----
def test_dataset_names(cfg):
    return OmegaConf.select(cfg, "dataloader.test.dataset.names", default="test")


def has_evaluator(cfg):
    return OmegaConf.select(cfg, "dataloader.evaluator", default=None) is not None


def train_dataset_name(cfg):
    """The first training dataset name, or None when the config does not name one."""
    names = OmegaConf.select(cfg, "dataloader.train.dataset.names", default=None)
    if isinstance(names, str):
        return names
    if names is not None and len(names) and isinstance(names[0], str):
        return names[0]
    return None


def audit_ground_truth(cfg):
    """The audit of the evaluation set's annotation file (efl.engine.ground_truth), logged;
    [] without an evaluator."""
    if not has_evaluator(cfg):
        return []
    reports = audit_evaluation_ground_truth(test_dataset_names(cfg), invalid_boxes=cfg.train.eval_invalid_boxes)
    for report in reports:
        logger.info(describe_audit(report))
    return reports


# ---- hooks ----
def build_ema_hooks(cfg, model, checkpointer):
    """efl.engine.ema.ema_hooks with ``train.ema``: ([], a null context) when not enabled."""
    ema = cfg.train.ema
    if not ema.enabled:
        return [], contextlib.nullcontext
    return ema_hooks(model, checkpointer, decay=ema.decay, tau=ema.tau)


def build_no_aug_switch(cfg):
    """The switch to the no-augmentation loader for the last ``train.no_aug_epochs`` epochs of
    ``train.epoch_iters`` iterations (None when 0): ``dataloader.train`` with the arguments its
    mapper declares in ``NO_AUGMENTATION_ARGUMENTS`` (efl.data.yolox_augmentation.YOLOXTrainMapper)."""
    if not cfg.train.no_aug_epochs:
        return None
    start_iter = no_aug_start_iter(
        max_iter=cfg.train.max_iter, epoch_iters=cfg.train.epoch_iters, no_aug_epochs=cfg.train.no_aug_epochs,
        total_epochs=OmegaConf.select(cfg, "lr_multiplier.total_epochs", default=None),
    )
    loader_cfg = copy.deepcopy(cfg.dataloader.train)
    mapper = loader_cfg.mapper
    target = mapper.get("_target_")
    target = locate(target) if isinstance(target, str) else target  # a config saved as yaml names it
    arguments = getattr(target, "NO_AUGMENTATION_ARGUMENTS", None)
    if arguments is None:
        raise ValueError("train.no_aug_epochs needs a training mapper that declares its "
                         "NO_AUGMENTATION_ARGUMENTS (efl.data.yolox_augmentation.YOLOXTrainMapper), "
                         f"got {mapper}")
    for name, value in arguments.items():
        setattr(mapper, name, value)
    return NoAugmentationSwitch(start_iter=start_iter, build_loader=lambda: instantiate(loader_cfg))


def build_bias_ledger(cfg, model, optimizer):
    """The ledger hook when ``train.bias_ledger`` is true and the model has an equalized loss."""
    losses = find_equalized_losses(model)
    if not cfg.train.bias_ledger or not losses:
        return None
    clip = cfg.train.clip_grad
    return ClassifierBiasLedger(model, optimizer, losses[0][1], output_dir=cfg.train.output_dir,
                                clip_max_norm=clip.max_norm if clip.enabled else None)


def build_statistics_hook(cfg, model):
    """The EFL statistics hook with the training set's frequency groups (None without an
    equalized loss)."""
    losses = find_equalized_losses(model)
    if not losses:
        return None
    name = train_dataset_name(cfg)
    metadata = MetadataCatalog.get(name) if name else None
    groups = class_frequency_groups(metadata, losses[0][1].num_classes)
    return EqualizedLossStatistics(model, class_groups=groups, period=cfg.train.log_period,
                                   output_dir=cfg.train.output_dir)


# ---- running ----
def do_test(cfg, model, ground_truth=()):
    if not has_evaluator(cfg):
        return {}
    ret = inference_on_dataset(model, instantiate(cfg.dataloader.test), instantiate(cfg.dataloader.evaluator))
    if comm.is_main_process():
        print_csv_format(ret)
        for report in ground_truth:
            logger.info(describe_audit(report))
    return ret


def do_train(args, cfg, ground_truth=()):
    """Train ``cfg`` (``args.resume``: continue from the last checkpoint); returns the last
    evaluation's results."""
    model = instantiate(cfg.model)
    logger.info(f"Model:\n{model}", extra=FILE_ONLY)
    model.to(cfg.train.device)

    cfg.optimizer.params.model = model
    optim = add_full_model_gradient_clipping(instantiate(cfg.optimizer), **cfg.train.clip_grad)
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

    # YOLOX-IP: the EMA hook runs before the checkpointer and the evaluation.
    ema, evaluation_weights = build_ema_hooks(cfg, model, checkpointer)
    # Several processes: each keeps its own BN statistics (broadcast_buffers=False); before a
    # checkpoint or an evaluation they are averaged and rank 0's state is given to every process,
    # so that the evaluation scores exactly the weights that are saved.
    buffer_sync = BufferSyncHook(model, ema=checkpointer.checkpointables.get("ema"),
                                 periods=(cfg.train.checkpointer.period, cfg.train.eval_period))
    last_results = {}

    def test_and_keep():
        last_results.clear()
        with evaluation_weights():
            last_results.update(do_test(cfg, model, ground_truth))
        return dict(last_results)

    trainer.register_hooks([
        hooks.IterationTimer(),
        hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
        *ema,
        buffer_sync,
        build_no_aug_switch(cfg),
        build_statistics_hook(cfg, model),
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


def load_trained_model(config_file, checkpoint, overrides=()):
    """``(cfg, model)``: the model of a LazyConfig file (the ``train`` schema under its ``train``,
    key=value ``overrides`` applied), in eval mode on the CPU, with the weights and loss statistics
    of ``checkpoint`` (which must fit it exactly). The one loader of a trained model for the tools
    (demo, study, predict)."""
    cfg = apply_overrides(with_train_schema(LazyConfig.load(str(config_file))), list(overrides))
    model = instantiate(cfg.model).eval()
    AtomicDetectionCheckpointer(model, load_mode="strict").load(checkpoint)
    return cfg, model


def do_eval(cfg, checkpoint, ground_truth=()):
    """Evaluate ``checkpoint`` (with ``train.ema``: its EMA weights, or the model's own with a
    warning when the file has none)."""
    model = instantiate(cfg.model)
    model.to(cfg.train.device)
    model = create_ddp_model(model)
    # Evaluation accepts only weights that fit the model exactly.
    checkpointer = AtomicDetectionCheckpointer(model, load_mode="strict")
    _, evaluation_weights = build_ema_hooks(cfg, model, checkpointer)
    checkpointer.load(checkpoint)
    with evaluation_weights():
        return do_test(cfg, model, ground_truth)
