"""Megvii YOLOX weights in our backbone and neck: the renames of docs/yolox_ip.md load them, and
the Focus reorder makes our stem compute Megvii's."""
import efl  # noqa: F401  (compatibility fixes before detectron2)

import re
from pathlib import Path

import torch
import torch.nn.functional as F

from efl.modeling.yolox import CSPDarknet, YOLOXPAFPN

# Megvii -> ours, applied in this order (docs/yolox_ip.md, "Checkpoint keys")
_RENAMES = [
    (r"^backbone\.backbone\.", "backbone.bottom_up."),
    (r"\.bn\.", ".bn1."),
    (r"\.stem\.conv\.", ".stem.conv_block."),
    (r"\.dark5\.1\.conv([12])\.", r".dark5.1.conv_block\1."),
]
# Megvii's Focus phases are (0,0), (1,0), (0,1), (1,1); ours (0,0), (0,1), (1,0), (1,1)
_FOCUS_GROUPS = [0, 2, 1, 3]


def _megvii_yolox_s_neck_state_dict():
    """Random weights in the layout of Megvii's YOLOX-S YOLOPAFPN (its keys prefixed
    ``backbone.``, as in a YOLOX checkpoint), read from its module definitions."""
    g = torch.Generator().manual_seed(0)
    state = {}
    path = Path(__file__).with_name("megvii_yolox_s_neck_keys.txt")
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            continue
        key, shape = line.split("\t")
        if shape == "-":
            state[key] = torch.tensor(0)
            continue
        shape = [int(d) for d in shape.split("x")]
        value = torch.randn(shape, generator=g) * 0.1
        if key.endswith("running_var"):
            value = value.abs() + 0.5
        state[key] = value
    return state


def _to_ours(state):
    converted = {}
    for key, value in state.items():
        for pattern, replacement in _RENAMES:
            key = re.sub(pattern, replacement, key)
        if key == "backbone.bottom_up.stem.conv_block.conv.weight":
            out_channels, in_channels = value.shape[:2]
            groups = value.view(out_channels, 4, in_channels // 4, *value.shape[2:])
            value = groups[:, _FOCUS_GROUPS].reshape(value.shape)
        converted[key] = value
    return converted


def test_megvii_yolox_s_backbone_and_neck_load_after_renames_and_focus_reorder():
    """
    A YOLOX-S state_dict in Megvii's layout loads strictly into YOLOXPAFPN once renamed
    (``bn`` -> ``bn1``, Focus ``conv`` -> ``conv_block``, SPP ``conv1/2`` -> ``conv_block1/2``,
    the darknet under ``bottom_up``). Two differences from Megvii's network are not key names:

    1. Focus phase order. Megvii stacks the pixel phases as (0,0), (1,0), (0,1), (1,1), the
       reference as (0,0), (0,1), (1,0), (1,1); permuting the stem weight's four 3-channel input
       groups [0, 2, 1, 3] makes our stem compute Megvii's exactly (checked below against Megvii's
       Focus written out with slicing).
    2. PAFPN residuals. Megvii's neck CSP bottlenecks have no residual add, the reference's (and
       ours) do, so with Megvii's weights the neck computes a different function: a Megvii
       checkpoint is a starting point, not the reference's model.
    """
    megvii = _megvii_yolox_s_neck_state_dict()
    model = YOLOXPAFPN(bottom_up=CSPDarknet(depth=0.33, width=0.50), depth=0.33)
    ours = _to_ours(megvii)
    model.load_state_dict({k[len("backbone.") :]: v for k, v in ours.items()}, strict=True)
    model.eval()

    x = torch.randn(1, 3, 32, 32)
    # Megvii's stem: TL, BL, TR, BR slices, conv, BN (eps 1e-3 in its training setup), SiLU
    patches = torch.cat(
        [x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]], dim=1
    )
    p = "backbone.backbone.stem.conv."
    expected = F.silu(
        F.batch_norm(
            F.conv2d(patches, megvii[p + "conv.weight"], padding=1),
            megvii[p + "bn.running_mean"],
            megvii[p + "bn.running_var"],
            megvii[p + "bn.weight"],
            megvii[p + "bn.bias"],
            eps=1e-3,
        )
    )
    with torch.no_grad():
        torch.testing.assert_close(model.bottom_up.stem(x), expected)
        # without the reorder the stem is a different function
        model.bottom_up.stem.conv_block.conv.weight.copy_(megvii[p + "conv.weight"])
        assert not torch.allclose(model.bottom_up.stem(x), expected, atol=1e-3)

    # the neck's bottlenecks keep the residual Megvii's do not have
    assert all(block.use_add for block in model.C3_p4.m)
