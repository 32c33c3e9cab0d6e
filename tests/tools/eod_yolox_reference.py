"""The reference's (EOD / United-Perception) YOLOX-IP network, re-stated for the tests from its
module definitions, NOT from this project's modules:

- ``eod_yolox_ip_layout``: every state-dict key and shape the reference's modules create
  (up/tasks/det/plugins/yolox/models/backbone/cspdarknet.py ``CSPDarknet``, ``CSPLayer``,
  ``Bottleneck``; up/tasks/det/plugins/yolov5/models/components.py ``ConvBnAct`` (conv, bn1),
  ``Focus`` (space2depth, conv_block), ``SPP`` (conv_block1, conv_block2);
  up/tasks/det/plugins/yolox/models/neck/pafpn.py ``YoloxPAFPN``;
  up/tasks/det/plugins/yolox/models/head/yolox_head.py ``YoloXHead``; the EFL loss buffers);
- ``eod_yolox_ip_forward``: its forward pass with ``torch.nn.functional`` on those tensors.
"""
from collections import OrderedDict

import torch
import torch.nn.functional as F

from .eod_reference import BN_KEYS

# The reference's runner sets every BN to eps 1e-3 after building the model (special_bn_init).
BN_EPS = 1e-3
SIZES = {"S": (0.33, 0.50), "M": (0.67, 0.75), "L": (1.0, 1.0), "X": (1.33, 1.25)}


def _conv_bn_act(layout, prefix, cin, cout, k):
    # ConvBnAct: self.conv (no bias), then add_module("bn1", BatchNorm2d); the act has no state.
    layout[f"{prefix}.conv.weight"] = (cout, cin, k, k)
    for name in BN_KEYS:
        layout[f"{prefix}.bn1.{name}"] = () if name == "num_batches_tracked" else (cout,)


def _csp(layout, prefix, cin, cout, n):
    # CSPLayer: conv1, conv2 (1x1 to hidden = cout / 2), conv3 (1x1 from 2 hidden), m = n x
    # Bottleneck(hidden, hidden, expansion 1.0): conv1 1x1, conv2 3x3.
    hidden = int(cout * 0.5)
    _conv_bn_act(layout, f"{prefix}.conv1", cin, hidden, 1)
    _conv_bn_act(layout, f"{prefix}.conv2", cin, hidden, 1)
    _conv_bn_act(layout, f"{prefix}.conv3", 2 * hidden, cout, 1)
    for i in range(n):
        _conv_bn_act(layout, f"{prefix}.m.{i}.conv1", hidden, hidden, 1)
        _conv_bn_act(layout, f"{prefix}.m.{i}.conv2", hidden, hidden, 3)


def _channels(size):
    depth, width = SIZES[size]
    base = int(width * 64)
    return depth, width, base, max(round(depth * 3), 1)


def eod_yolox_ip_layout(size="S", num_classes=1203, num_point=2):
    """``OrderedDict(key -> shape)`` of the reference's YOLOX-IP state dict."""
    depth, width, b, n = _channels(size)
    layout = OrderedDict()
    _conv_bn_act(layout, "backbone.stem.conv_block", 12, b, 3)  # Focus: 4 x 3 channels in
    for stage, (cin, blocks) in zip((2, 3, 4), ((b, n), (2 * b, 3 * n), (4 * b, 3 * n))):
        _conv_bn_act(layout, f"backbone.dark{stage}.0", cin, 2 * cin, 3)
        _csp(layout, f"backbone.dark{stage}.1", 2 * cin, 2 * cin, blocks)
    _conv_bn_act(layout, "backbone.dark5.0", 8 * b, 16 * b, 3)
    _conv_bn_act(layout, "backbone.dark5.1.conv_block1", 16 * b, 8 * b, 1)  # SPP
    _conv_bn_act(layout, "backbone.dark5.1.conv_block2", 8 * b * 4, 16 * b, 1)
    _csp(layout, "backbone.dark5.2", 16 * b, 16 * b, n)
    c0, c1, c2 = 4 * b, 8 * b, 16 * b  # neck inplanes: dark3, dark4, dark5
    pan_n = round(3 * depth)
    _conv_bn_act(layout, "neck.lateral_conv0", c2, c1, 1)
    _csp(layout, "neck.C3_p4", 2 * c1, c1, pan_n)
    _conv_bn_act(layout, "neck.reduce_conv1", c1, c0, 1)
    _csp(layout, "neck.C3_p3", 2 * c0, c0, pan_n)
    _conv_bn_act(layout, "neck.bu_conv2", c0, c0, 3)
    _csp(layout, "neck.C3_n3", 2 * c0, c1, pan_n)
    _conv_bn_act(layout, "neck.bu_conv1", c1, c1, 3)
    _csp(layout, "neck.C3_n4", 2 * c1, c2, pan_n)
    # YoloXHead: ModuleLists in the order stems, cls_convs, reg_convs, cls_preds, reg_preds,
    # obj_preds are *assigned* in __init__ (cls_convs first); state_dict follows that order.
    hidden = int(256 * width)
    head = OrderedDict()
    for name in ("cls_convs", "reg_convs", "cls_preds", "reg_preds", "obj_preds", "stems"):
        for level, cin in enumerate((c0, c1, c2)):
            p = f"roi_head.{name}.{level}"
            if name == "stems":
                _conv_bn_act(head, p, cin, hidden, 1)
            elif name.endswith("_convs"):
                _conv_bn_act(head, f"{p}.0", hidden, hidden, 3)
                _conv_bn_act(head, f"{p}.1", hidden, hidden, 3)
            else:
                out = {"cls_preds": num_point * num_classes, "reg_preds": num_point * 4,
                       "obj_preds": num_point}[name]
                head[f"{p}.weight"] = (out, hidden, 1, 1)
                head[f"{p}.bias"] = (out,)
    layout.update(head)
    for name in ("pos_grad", "neg_grad", "pos_neg"):
        layout[f"post_process.cls_loss.{name}"] = (num_classes,)
    return layout


def _cba(x, sd, prefix, stride=1):
    w = sd[f"{prefix}.conv.weight"]
    x = F.conv2d(x, w, stride=stride, padding=w.shape[-1] // 2)
    x = F.batch_norm(x, sd[f"{prefix}.bn1.running_mean"], sd[f"{prefix}.bn1.running_var"],
                     sd[f"{prefix}.bn1.weight"], sd[f"{prefix}.bn1.bias"], training=False, eps=BN_EPS)
    return F.silu(x)


def _csp_forward(x, sd, prefix, shortcut=True):
    x1, x2 = _cba(x, sd, f"{prefix}.conv1"), _cba(x, sd, f"{prefix}.conv2")
    i = 0
    while f"{prefix}.m.{i}.conv1.conv.weight" in sd:
        y = _cba(_cba(x1, sd, f"{prefix}.m.{i}.conv1"), sd, f"{prefix}.m.{i}.conv2")
        x1 = y + x1 if shortcut else y  # in == out channels in every CSP bottleneck
        i += 1
    return _cba(torch.cat([x1, x2], 1), sd, f"{prefix}.conv3")


def _space2depth(x):
    # components.py Space2Depth(2): view (N, C, H/2, 2, W/2, 2), permute (0, 3, 5, 1, 2, 4)
    n, c, h, w = x.shape
    x = x.view(n, c, h // 2, 2, w // 2, 2).permute(0, 3, 5, 1, 2, 4).contiguous()
    return x.view(n, c * 4, h // 2, w // 2)


def eod_yolox_ip_forward(sd, image):
    """Raw head outputs for a (N, 3, H, W) BGR 0-255 batch: ``(cls, box, obj)`` per level P3-P5."""
    x = _cba(_space2depth(image), sd, "backbone.stem.conv_block")
    feats = []
    for stage in (2, 3, 4):
        x = _csp_forward(_cba(x, sd, f"backbone.dark{stage}.0", stride=2), sd, f"backbone.dark{stage}.1")
        feats.append(x)
    x = _cba(x, sd, "backbone.dark5.0", stride=2)
    y = _cba(x, sd, "backbone.dark5.1.conv_block1")
    y = torch.cat([y] + [F.max_pool2d(y, k, stride=1, padding=k // 2) for k in (5, 9, 13)], 1)
    x = _cba(y, sd, "backbone.dark5.1.conv_block2")
    x = _csp_forward(x, sd, "backbone.dark5.2", shortcut=False)  # dark5's CSP has no residual
    x2, x1, x0 = feats[1], feats[2], x  # dark3, dark4, dark5
    # YoloxPAFPN.forward (CSPLayer default shortcut=True: the residual stays in the neck)
    fpn_out0 = _cba(x0, sd, "neck.lateral_conv0")
    f_out0 = _csp_forward(torch.cat([F.interpolate(fpn_out0, size=x1.shape[-2:], mode="nearest"), x1], 1),
                          sd, "neck.C3_p4")
    fpn_out1 = _cba(f_out0, sd, "neck.reduce_conv1")
    pan_out2 = _csp_forward(torch.cat([F.interpolate(fpn_out1, size=x2.shape[-2:], mode="nearest"), x2], 1),
                            sd, "neck.C3_p3")
    pan_out1 = _csp_forward(torch.cat([_cba(pan_out2, sd, "neck.bu_conv2", stride=2), fpn_out1], 1),
                            sd, "neck.C3_n3")
    pan_out0 = _csp_forward(torch.cat([_cba(pan_out1, sd, "neck.bu_conv1", stride=2), fpn_out0], 1),
                            sd, "neck.C3_n4")
    cls, box, obj = [], [], []
    for level, f in enumerate((pan_out2, pan_out1, pan_out0)):  # YoloXHead.forward_net
        f = _cba(f, sd, f"roi_head.stems.{level}")
        cls_feat = _cba(_cba(f, sd, f"roi_head.cls_convs.{level}.0"), sd, f"roi_head.cls_convs.{level}.1")
        reg_feat = _cba(_cba(f, sd, f"roi_head.reg_convs.{level}.0"), sd, f"roi_head.reg_convs.{level}.1")
        cls.append(F.conv2d(cls_feat, sd[f"roi_head.cls_preds.{level}.weight"], sd[f"roi_head.cls_preds.{level}.bias"]))
        box.append(F.conv2d(reg_feat, sd[f"roi_head.reg_preds.{level}.weight"], sd[f"roi_head.reg_preds.{level}.bias"]))
        obj.append(F.conv2d(reg_feat, sd[f"roi_head.obj_preds.{level}.weight"], sd[f"roi_head.obj_preds.{level}.bias"]))
    return cls, box, obj
