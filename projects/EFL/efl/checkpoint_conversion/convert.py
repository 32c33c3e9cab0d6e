"""Convert a checkpoint of the reference (EOD / United-Perception) into a Detectron2 checkpoint of
this project's model (docs/eod_checkpoints.md)."""
import functools
import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, Mapping, Optional

import torch

from .eod_layouts import EODCheckpointError, drop_stem_aliases, extract_state_dict
from .improved_baseline import check_no_tower_conv_biases, detect_improved_baseline
from .model_info import EODModelInfo
from .yolox_ip import detect_yolox_ip

__all__ = [
    "EODConversion",
    "check_against_model",
    "convert_eod_checkpoint",
    "convert_eod_state_dict",
    "detect_eod_model",
    "load_eod_file",
    "matching_model",
]

_LIST_LIMIT = 30  # keys listed in one error message


def _listing(keys) -> str:
    keys = list(keys)
    shown = "\n  ".join(keys[:_LIST_LIMIT])
    more = f"\n  ... and {len(keys) - _LIST_LIMIT} more" if len(keys) > _LIST_LIMIT else ""
    return f"\n  {shown}{more}"


def detect_eod_model(state_dict: Mapping[str, torch.Tensor], loss: Optional[str] = None
                     ) -> EODModelInfo:
    """The family, size, classes and anchors of a reference state dict (aliases already dropped),
    or an error listing the key prefixes by which nothing could be recognised. ``loss`` ("efl",
    "eqfl" or None) chooses between YOLOX-IP configs that differ only in the loss."""
    for detect in (detect_improved_baseline, functools.partial(detect_yolox_ip, loss=loss)):
        info = detect(state_dict)
        if info is not None:
            return info
    prefixes = sorted({".".join(k.split(".")[:2]) for k in state_dict})
    raise EODCheckpointError(
        "not a checkpoint of the reference's improved baseline (backbone.layer0..4, neck, "
        "roi_head.cls_subnet_pred) or YOLOX-IP (backbone.stem, backbone.dark2..5, "
        f"roi_head.cls_preds); its keys start with:{_listing(prefixes)}"
    )


def _drop_num_batches_tracked(state_dict, info):
    out = OrderedDict()
    for key, value in state_dict.items():
        if key.endswith(".num_batches_tracked") and not info.keeps_num_batches_tracked:
            owner = key[: -len("num_batches_tracked")]
            if owner + "running_mean" in state_dict:
                continue  # a frozen BN's counter; our FrozenBatchNorm2d has none
        out[key] = value
    return out


def convert_eod_state_dict(state_dict: Mapping[str, torch.Tensor], loss: Optional[str] = None):
    """
    Args:
        state_dict: a reference model's state dict, without ``module.`` prefixes.
        loss: "efl", "eqfl" or None, see :func:`detect_eod_model`.

    Returns:
        ``(state_dict, info)``: our model's state dict and the :class:`EODModelInfo` found.
        Every input key is placed or the call fails with an error listing the keys it could not
        place; the channel layout is kept as the file has it (anchor-major, as Detectron2 reads).
    """
    state_dict = drop_stem_aliases(state_dict)
    info = detect_eod_model(state_dict, loss)
    state_dict = _drop_num_batches_tracked(state_dict, info)
    try:
        converted, unplaced = info.rules.rename(state_dict)
    except ValueError as e:
        raise EODCheckpointError(str(e)) from None
    if unplaced:
        raise EODCheckpointError(
            f"{info.describe()}: {len(unplaced)} keys have no place in this project's model:"
            f"{_listing(unplaced)}"
        )
    if info.family == "improved_baseline":
        check_no_tower_conv_biases(converted)
    return converted, info


def check_against_model(
    state_dict: Mapping[str, torch.Tensor],
    info: EODModelInfo,
    model_state_dict: Mapping[str, torch.Tensor],
) -> None:
    """Raise an error naming each key (ours and the reference's) that is missing, unexpected or
    of the wrong shape for ``model_state_dict``, the state dict of the matching config's model."""
    def both(key):
        ref = info.rules.to_reference(key)
        return f"{key} (reference: {ref})" if ref else key

    missing = [both(k) for k in model_state_dict if k not in state_dict]
    unexpected = [both(k) for k in state_dict if k not in model_state_dict]
    misshaped = [
        f"{both(k)}: file {tuple(v.shape)}, model {tuple(model_state_dict[k].shape)}"
        for k, v in state_dict.items()
        if k in model_state_dict and tuple(v.shape) != tuple(model_state_dict[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} keys the model needs are not in the file:{_listing(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} keys the model does not have:{_listing(unexpected)}")
    if misshaped:
        problems.append(f"{len(misshaped)} keys of the wrong shape:{_listing(misshaped)}")
    if problems:
        raise EODCheckpointError(
            f"{info.describe()} does not fit {info.config} {' '.join(info.overrides)}:\n"
            + "\n".join(problems)
        )


@dataclass
class EODConversion:
    """A converted checkpoint."""

    state_dict: "OrderedDict[str, torch.Tensor]"  # our model's keys
    info: EODModelInfo
    source: str  # where in the file the weights were found, e.g. "ema.ema_state_dict"

    def detectron2_checkpoint(self) -> Dict:
        """The dict to ``torch.save``: ``DetectionCheckpointer`` reads ``model`` from it."""
        return {
            "model": self.state_dict,
            "__author__": f"EOD / United-Perception, converted from {self.source} by "
                          "tools/convert_eod_checkpoint.py",
            "matching_config": self.info.config,
            # the model's overrides, then those of the reference's inference
            "matching_overrides": list(self.info.overrides) + self.info.inference_overrides,
        }


def convert_eod_checkpoint(checkpoint, weights: Optional[str] = None, loss: Optional[str] = None
                           ) -> EODConversion:
    """
    Args:
        checkpoint: what ``torch.load`` returned for a reference checkpoint (any layout of
            docs/eod_checkpoints.md).
        weights: "ema", "model" or None (EMA when the file has it), see :func:`extract_state_dict`.
        loss: "efl", "eqfl" or None, see :func:`detect_eod_model`.
    """
    state_dict, source = extract_state_dict(checkpoint, weights)
    converted, info = convert_eod_state_dict(state_dict, loss)
    return EODConversion(converted, info, source)


def load_eod_file(path: str):
    """``torch.load`` a reference checkpoint on the CPU.

    The reference's files also pickle training state (optimizer, scheduler, config); when
    PyTorch's safe loader refuses one of those objects, the file is unpickled in full, as the
    reference itself loads it. Only convert files whose origin you trust.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such checkpoint file: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # pickle.UnpicklingError and friends: objects beyond tensors and builtins
        return torch.load(path, map_location="cpu", weights_only=False)


def matching_model(info: EODModelInfo, repo_root: str):
    """The model of the config the checkpoint matches (with its overrides), on the CPU."""
    from detectron2.config import LazyConfig, instantiate

    cfg = LazyConfig.load(os.path.join(repo_root, info.config))
    cfg = LazyConfig.apply_overrides(cfg, list(info.overrides))
    return instantiate(cfg.model)
