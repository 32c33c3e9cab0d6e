"""The reference's (EOD / United-Perception) checkpoint files: find the state dict inside one.

The layouts (docs/eod_checkpoints.md, "Input files"):

- ``{"model": state_dict, "optimizer": ..., "epoch": ..., ...}``, written by the reference's
  saver; ``state_dict`` instead of ``model`` in some tools; or the bare state dict;
- with EMA on (the YOLOX-IP configs) also ``"ema": {"ema_state_dict": state_dict, "decay": ...}``.
  The reference evaluates such a model with its EMA weights, so they are the default here;
- keys prefixed ``module.`` when the model was wrapped in DistributedDataParallel;
- files of the reference's 0.1.0 release register the ResNet stem twice, as
  ``backbone.conv1`` / ``backbone.bn1`` and as ``backbone.layer0.0`` / ``backbone.layer0.1``
  (the same tensors). The aliases are checked equal to what they alias and dropped.
"""
from collections import OrderedDict
from typing import Mapping, Optional, Tuple

import torch

__all__ = ["EODCheckpointError", "extract_state_dict", "drop_stem_aliases"]

# 0.1.0's alias -> the key at the reference's HEAD that holds the same tensor
STEM_ALIASES = OrderedDict(
    [("backbone.conv1.weight", "backbone.layer0.0.weight")]
    + [(f"backbone.bn1.{name}", f"backbone.layer0.1.{name}")
       for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]
)


class EODCheckpointError(ValueError):
    """The input is not a checkpoint of the reference's models that this converter can place."""


def _is_state_dict(obj) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items()
    )


def _strip_module_prefix(state_dict: Mapping) -> "OrderedDict[str, torch.Tensor]":
    out = OrderedDict()
    for key, value in state_dict.items():
        new = key[len("module."):] if key.startswith("module.") else key
        if new in out:
            raise EODCheckpointError(
                f"key {new!r} occurs both with and without the 'module.' prefix"
            )
        out[new] = value
    return out


def extract_state_dict(checkpoint, weights: Optional[str] = None) -> Tuple[dict, str]:
    """
    Args:
        checkpoint: the object ``torch.load`` returned for a reference checkpoint file.
        weights: ``"ema"`` (the EMA weights; an error when the file has none), ``"model"`` (the
            trained weights), or None: EMA when the file has it, else the trained weights.

    Returns:
        ``(state_dict, source)``: the state dict without ``module.`` prefixes, and a description of
        where in the file it was found (e.g. ``"ema.ema_state_dict"``).
    """
    if weights not in (None, "ema", "model"):
        raise ValueError(f"weights must be 'ema', 'model' or None, got {weights!r}")
    if not isinstance(checkpoint, Mapping):
        raise EODCheckpointError(
            f"expected a dict (a checkpoint or a state dict), got {type(checkpoint).__name__}"
        )
    ema = checkpoint.get("ema")
    ema_state = ema.get("ema_state_dict") if isinstance(ema, Mapping) else None
    if weights == "ema" or (weights is None and ema_state is not None):
        if not _is_state_dict(ema_state):
            raise EODCheckpointError(
                "--weights ema: the file has no 'ema' entry with an 'ema_state_dict' of tensors "
                f"(top-level keys: {sorted(map(str, checkpoint))})"
            )
        return _strip_module_prefix(ema_state), "ema.ema_state_dict"
    for name in ("model", "state_dict"):
        if name in checkpoint:
            if not _is_state_dict(checkpoint[name]):
                raise EODCheckpointError(f"the file's {name!r} entry is not a state dict of tensors")
            return _strip_module_prefix(checkpoint[name]), name
    if _is_state_dict(checkpoint):
        return _strip_module_prefix(checkpoint), "the file itself (a bare state dict)"
    raise EODCheckpointError(
        "found no state dict: expected a 'model' or 'state_dict' entry, an 'ema' entry, or a bare "
        f"state dict; top-level keys: {sorted(map(str, checkpoint))}"
    )


def drop_stem_aliases(state_dict: Mapping) -> "OrderedDict[str, torch.Tensor]":
    """Drop the 0.1.0 release's stem aliases after checking each equals the key it aliases.

    An alias whose partner is absent, or whose value differs, is an error: the file would then
    hold two different stems and no choice between them would be safe.
    """
    out = OrderedDict(state_dict)
    for alias, key in STEM_ALIASES.items():
        if alias not in out:
            continue
        if key not in out:
            raise EODCheckpointError(f"{alias!r} is present but the key it aliases, {key!r}, is not")
        a, b = out[alias], out[key]
        if a.shape != b.shape or not torch.equal(a, b):
            raise EODCheckpointError(
                f"{alias!r} (an alias of the ResNet stem in the reference's 0.1.0 files) differs "
                f"from {key!r}; refusing to choose one"
            )
        del out[alias]
    return out
