#!/usr/bin/env python
"""Train or evaluate an EFL/EQFL detector from a LazyConfig (like Detectron2's
tools/lazyconfig_train_net.py, on top of ``efl.engine``).

    tools/train_net.py --config-file configs/efl_improved_baseline_r50_2x_rfs.py --num-gpus 8
    tools/train_net.py --config-file CFG --resume                      # continue a killed run
    tools/train_net.py --config-file CFG --eval-only train.init_checkpoint=model_final.pth
    tools/train_net.py --config-file CFG --num-gpus 2 train.device=cpu  # 2 gloo processes, no GPU

Trailing ``path.key=value`` arguments override the config. With CUDA, processes use NCCL through
Detectron2's launcher; without CUDA, ``--num-gpus N`` runs N CPU processes over gloo.
After evaluation, ``<train.output_dir>/final_results.json`` holds the metrics and the wall time.
"""
import logging
import os
import sys
import time

import efl  # noqa: F401  (compatibility fixes; must precede detectron2)

import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.data import MetadataCatalog
from detectron2.engine import default_argument_parser, default_setup, default_writers, hooks
from detectron2.evaluation import inference_on_dataset, print_csv_format
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger
from omegaconf import OmegaConf

from efl.engine import (
    AtomicDetectionCheckpointer,
    EqualizedLossStatistics,
    add_full_model_gradient_clipping,
    build_trainer,
    class_frequency_groups,
    create_ddp_model,
    find_equalized_losses,
    launch,
    write_final_results,
)

logger = logging.getLogger("detectron2")


def do_test(cfg, model):
    if "evaluator" not in cfg.dataloader:
        return {}
    ret = inference_on_dataset(model, instantiate(cfg.dataloader.test), instantiate(cfg.dataloader.evaluator))
    if comm.is_main_process():
        print_csv_format(ret)
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


def do_train(args, cfg):
    model = instantiate(cfg.model)
    logger.info(f"Model:\n{model}")
    model.to(cfg.train.device)

    cfg.optimizer.params.model = model
    # configs without train.clip_grad (not composed from configs/common/train.py) do not clip
    clip_grad = OmegaConf.select(cfg, "train.clip_grad", default=None) or {"enabled": False}
    optim = add_full_model_gradient_clipping(instantiate(cfg.optimizer), **clip_grad)

    train_loader = instantiate(cfg.dataloader.train)
    model = create_ddp_model(model, **cfg.train.ddp)
    trainer = build_trainer(model, train_loader, optim, amp_enabled=cfg.train.amp.enabled)
    # The trainer checkpoints its iteration, the optimizer (SimpleTrainer.state_dict) and the LR
    # scheduler (hooks.LRScheduler around Detectron2's LRMultiplier); the model's state_dict
    # carries the EFL statistics buffers.
    checkpointer = AtomicDetectionCheckpointer(model, cfg.train.output_dir, trainer=trainer)

    last_results = {}

    def test_and_keep():
        last_results.clear()
        last_results.update(do_test(cfg, model))
        return dict(last_results)

    trainer.register_hooks([
        hooks.IterationTimer(),
        hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
        statistics_hook(cfg, model),
        hooks.PeriodicCheckpointer(checkpointer, **cfg.train.checkpointer) if comm.is_main_process() else None,
        hooks.EvalHook(cfg.train.eval_period, test_and_keep),
        hooks.PeriodicWriter(default_writers(cfg.train.output_dir, cfg.train.max_iter),
                             period=cfg.train.log_period) if comm.is_main_process() else None,
    ])

    checkpointer.resume_or_load(cfg.train.init_checkpoint, resume=args.resume)
    if args.resume and checkpointer.has_checkpoint():
        # The checkpoint's iteration is the last finished one.
        start_iter = trainer.iter + 1
    else:
        start_iter = 0
    logger.info(f"Starting training from iteration {start_iter}")
    trainer.train(start_iter, cfg.train.max_iter)
    return last_results


def main(args):
    cfg = LazyConfig.load(args.config_file)
    cfg = LazyConfig.apply_overrides(cfg, args.opts)
    cuda_missing = str(cfg.train.device).startswith("cuda") and not torch.cuda.is_available()
    if cuda_missing:
        cfg.train.device = "cpu"
    default_setup(cfg, args)
    # the project's own modules log under "efl" (detectron2 sets up "detectron2" and "fvcore")
    setup_logger(cfg.train.output_dir, distributed_rank=comm.get_rank(), name="efl")
    if cuda_missing:
        logger.warning("train.device asks for CUDA, which is not available: running on CPU")

    start = time.perf_counter()
    if args.eval_only:
        model = instantiate(cfg.model)
        model.to(cfg.train.device)
        model = create_ddp_model(model)
        checkpointer = AtomicDetectionCheckpointer(model, cfg.train.output_dir)
        checkpointer.resume_or_load(cfg.train.init_checkpoint, resume=args.resume)
        results = do_test(cfg, model)
        extra = {"mode": "eval-only"}
    else:
        results = do_train(args, cfg)
        extra = {"mode": "train", "max_iter": int(cfg.train.max_iter)}
    if comm.is_main_process() and results:
        path = write_final_results(cfg.train.output_dir, results,
                                   wall_time_s=time.perf_counter() - start,
                                   world_size=comm.get_world_size(), **extra)
        logger.info(f"Final results written to {path}")
    return results


def invoke_main():
    args = default_argument_parser().parse_args()
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )


if __name__ == "__main__":
    invoke_main()
