#!/usr/bin/env python
"""Convert a torchvision ResNet checkpoint (ImageNet weights you have, e.g. resnet50-*.pth) into
Detectron2's ResNet parameter names, for `train.init_checkpoint` of the LVIS configs.

    .venv/bin/python tools/convert_torchvision_to_d2.py resnet50-0676ba61.pth pretrained/R-50-torchvision.pkl

Nothing is downloaded. The names follow Detectron2's tools/convert-torchvision-to-d2.py (not
installed with the pip build): conv1/bn1 -> stem.conv1(.norm), layer1..4 -> res2..5, bn1..3 ->
conv1..3.norm, downsample.0/.1 -> shortcut(.norm). The output is Detectron2's pickle format
({"model": numpy arrays, "__author__": "torchvision", "matching_heuristics": True}), so the
checkpointer finds the keys under the detector's `backbone.bottom_up.` by suffix. Unlike
Detectron2's script, the ImageNet classifier (fc.*) and BatchNorm's num_batches_tracked are left
out (no Detectron2 ResNet has them), and a file that is not a torchvision ResNet is an error.

The weights expect what the configs set: RGB input, ImageNet mean/std on 0-255 pixels, the stride
on the 3x3 conv (ResNet stride_in_1x1=False), FrozenBN.
"""
import argparse
import collections
import os
import pickle
import re
import sys

__all__ = ["convert_torchvision_resnet"]

_BLOCK_KEY = re.compile(r"^layer([1-4])\.(\d+)\.(.+)$")
_LEFT_OUT = ("fc.weight", "fc.bias")


def _rename_in_block(rest):
    rest = re.sub(r"^bn([1-3])\.", r"conv\1.norm.", rest)
    rest = re.sub(r"^downsample\.0\.", "shortcut.", rest)
    return re.sub(r"^downsample\.1\.", "shortcut.norm.", rest)


def convert_torchvision_resnet(state_dict, source="the checkpoint"):
    """
    Args:
        state_dict: a torchvision ResNet's state_dict (tensor values).
        source: the file, for messages.

    Returns:
        (OrderedDict[str, numpy.ndarray], dict): the renamed weights, and a summary
        (``blocks`` per stage, ``left_out`` keys).
    """
    if "conv1.weight" not in state_dict or not any(k.startswith("layer1.") for k in state_dict):
        raise ValueError(f"{source} is not a torchvision ResNet state_dict (no conv1.weight / layer1.*); "
                         f"its first keys: {list(state_dict)[:5]}")
    converted, left_out, unknown = collections.OrderedDict(), [], []
    blocks = collections.defaultdict(set)
    for key, value in state_dict.items():
        if key.endswith("num_batches_tracked") or key in _LEFT_OUT:
            left_out.append(key)
            continue
        match = _BLOCK_KEY.match(key)
        if match:
            stage, block, rest = match.groups()
            blocks[int(stage) + 1].add(int(block))
            new_key = f"res{int(stage) + 1}.{block}.{_rename_in_block(rest)}"
        elif key.startswith("conv1."):
            new_key = "stem." + key
        elif key.startswith("bn1."):
            new_key = "stem.conv1.norm." + key[len("bn1."):]
        else:
            unknown.append(key)
            continue
        converted[new_key] = value.detach().cpu().numpy()
    if unknown:
        raise ValueError(f"{source}: keys that no torchvision ResNet has: {unknown[:5]}")
    summary = {"blocks": {f"res{s}": len(b) for s, b in sorted(blocks.items())}, "left_out": left_out}
    return converted, summary


def _load_state_dict(path):
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message for a pickled module (or any object beyond tensors and containers) is a
        # page about weights_only; what the user needs is what to give instead
        what = "holds Python objects (e.g. a whole pickled model)" if "weights_only" in str(e) else "is not a checkpoint"
        raise ValueError(f"{path} {what}: expected a torchvision ResNet state_dict, e.g. "
                         "torch.save(model.state_dict(), path)") from None
    except (RuntimeError, EOFError, IndexError, ValueError) as e:
        # a file torch cannot read at all: not a zip or pickle (torch raises all of these)
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"{path} is not a checkpoint torch can read ({reason})") from None
    # Training checkpoints wrap the weights; torchvision's released files are the state_dict.
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a state_dict (a dict of tensors), got {type(obj).__name__}")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="torchvision ResNet checkpoint (.pth)")
    parser.add_argument("output", help="Detectron2 checkpoint to write (.pkl)")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.input):
        parser.error(f"input {args.input} does not exist")
    try:
        weights, summary = convert_torchvision_resnet(_load_state_dict(args.input), args.input)
    except ValueError as e:
        sys.exit(f"error: {e}")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    tmp = args.output + ".tmp"
    with open(tmp, "wb") as f:
        pickle.dump({"model": weights, "__author__": "torchvision", "matching_heuristics": True}, f)
    os.replace(tmp, args.output)  # never a half-written checkpoint under the final name
    print(f"{len(weights)} tensors, blocks per stage {summary['blocks']}, left out "
          f"{len(summary['left_out'])} ({', '.join(k for k in summary['left_out'] if not k.endswith('tracked'))} "
          f"and num_batches_tracked); written to {args.output}")


if __name__ == "__main__":
    main()
