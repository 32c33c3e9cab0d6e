"""YOLOX-IP optimisation: SGD parameter groups and the learning-rate schedule
(docs/yolox_training.md).

- Weight decay on every weight except BatchNorm's, and on no bias except the classification
  biases (``cls_preds``): the reference's "yolov5_except" groups. Those biases start at
  -log((1 - 0.001) / 0.001) = -6.9 and are decayed towards 0.
- Learning rate: ``LR_PER_IMAGE`` x images per iteration (0.04 at 128), quadratic warm-up from 0
  over 5 epochs, cosine down to 0.05 x lr at epoch 285, then constant for the last 15 epochs
  (the no-augmentation epochs). As Detectron2's ``LRMultiplier`` evaluates the schedule at
  iteration / max_iter, ``max_iter`` must be a whole number of epochs.
"""
import math
import re

import torch
from fvcore.common.param_scheduler import ParamScheduler
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["LR_PER_IMAGE", "YOLOXCosineParamScheduler", "yolox_param_groups"]

# The reference's per-image learning rate: 0.04 at 16 GPUs x 8 images.
LR_PER_IMAGE = 0.0003125


def yolox_param_groups(model, *, weight_decay, decayed_bias_modules=(r"(.*\.)?cls_preds\.\d+",),
                       decayed_bias_weight_decay=None):
    """
    Two SGD parameter groups: with and without weight decay (three when the listed biases get a
    weight decay of their own).

    Args:
        model: the model (before any DistributedDataParallel wrapping).
        weight_decay: the decay of the first group (5e-4).
        decayed_bias_modules: regular expressions; the biases of the modules whose full name
            matches one (``re.fullmatch``) are decayed. Each must match a module with a bias.
        decayed_bias_weight_decay: None: those biases are in the first group, at
            ``weight_decay``; a number: they form a third group at that decay (the CPU demo's
            compressed schedule, see efl.engine.bias_decay).

    Returns:
        [{"params": decayed, "weight_decay": weight_decay}, {"params": others, "weight_decay": 0}]:
        decayed = every weight except BatchNorm weights, every parameter that is neither a
        weight nor a bias, and the listed biases; others = BatchNorm weights and all other biases.
        Frozen parameters (requires_grad False) are left out. With
        ``decayed_bias_weight_decay``, a third group ``{"params": listed biases, "weight_decay":
        decayed_bias_weight_decay}``.
    """
    patterns = [re.compile(p) for p in decayed_bias_modules]
    matched = {p.pattern: False for p in patterns}
    decayed, others, decayed_biases = [], [], []
    seen = set()
    for module_name, module in model.named_modules():
        bias_decayed = False
        for p in patterns:
            if p.fullmatch(module_name):
                if not isinstance(getattr(module, "bias", None), torch.nn.Parameter):
                    raise ValueError(f"decayed_bias_modules pattern {p.pattern!r} matches module "
                                     f"{module_name!r}, which has no bias")
                matched[p.pattern] = bias_decayed = True
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            if name == "bias":
                (decayed_biases if bias_decayed else others).append(param)
            elif isinstance(module, _BatchNorm):
                others.append(param)
            else:
                decayed.append(param)
    unmatched = [p for p, hit in matched.items() if not hit]
    if unmatched:
        raise ValueError(f"decayed_bias_modules patterns {unmatched} match no module of the model "
                         f"(e.g. the classification head's 'head.cls_preds.0')")
    if decayed_bias_weight_decay is None:
        return [
            {"params": decayed + decayed_biases, "weight_decay": weight_decay},
            {"params": others, "weight_decay": 0.0},
        ]
    return [
        {"params": decayed, "weight_decay": weight_decay},
        {"params": others, "weight_decay": 0.0},
        {"params": decayed_biases, "weight_decay": float(decayed_bias_weight_decay)},
    ]


class YOLOXCosineParamScheduler(ParamScheduler):
    """
    The reference's "yolox_cos" warm-up and "YoloXCosineLR" schedule as a multiplier of the base
    lr, a function of the training progress ``where`` in [0, 1), with t = where x total_epochs,
    w = warmup_epochs, c = total_epochs - constant_epochs and m = min_lr_ratio:

        (t / w)^2                                          for t < w
        m + (1 - m) / 2 * (1 + cos(pi (t - w) / (c - w)))   for w <= t < c
        m                                                  for t >= c
    """

    def __init__(self, *, total_epochs=300, warmup_epochs=5, constant_epochs=15, min_lr_ratio=0.05):
        """
        Args:
            total_epochs: the length of training, in epochs.
            warmup_epochs: length of the quadratic warm-up from 0.
            constant_epochs: the last epochs, at ``min_lr_ratio`` (the no-augmentation epochs).
            min_lr_ratio: m, the end of the cosine as a fraction of the base lr.
        """
        if not (warmup_epochs >= 0 and constant_epochs >= 0 and warmup_epochs + constant_epochs < total_epochs):
            raise ValueError(f"warm-up ({warmup_epochs}) and constant ({constant_epochs}) epochs must "
                             f"leave room for the cosine in {total_epochs} epochs")
        self.total_epochs = float(total_epochs)
        self.warmup_epochs = float(warmup_epochs)
        self.constant_epochs = float(constant_epochs)
        self.min_lr_ratio = float(min_lr_ratio)

    def __call__(self, where):
        t = where * self.total_epochs
        m = self.min_lr_ratio
        if t < self.warmup_epochs:
            return (t / self.warmup_epochs) ** 2
        cosine_epochs = self.total_epochs - self.warmup_epochs - self.constant_epochs
        if t >= self.warmup_epochs + cosine_epochs:
            return m
        return m + 0.5 * (1.0 - m) * (1.0 + math.cos(math.pi * (t - self.warmup_epochs) / cosine_epochs))
