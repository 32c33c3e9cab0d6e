"""The reference's (EOD / United-Perception) improved-baseline network, re-stated for the tests
from its module definitions, NOT from this project's modules:

- ``eod_improved_baseline_layout``: every state-dict key and shape, in registration order, that
  the reference's modules create (up/models/backbones/resnet.py ``ResNet``/``Bottleneck`` with
  ``normalize: freeze_bn``, up/tasks/det/models/necks/fpn.py ``FPN``,
  up/tasks/det/models/heads/roi_head/retina_head.py ``RetinaHeadWithIOU``, and the EFL loss's
  three buffers under ``post_process.cls_loss``);
- ``random_eod_state_dict``: that layout filled with random values of a sensible scale;
- ``eod_improved_baseline_forward``: the reference's forward pass written with
  ``torch.nn.functional`` directly on those tensors.
"""
import math
from collections import OrderedDict

import torch
import torch.nn.functional as F

BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
# The reference's FrozenBatchNorm2d is an nn.BatchNorm2d kept in eval mode: weight and bias are
# parameters, running_mean / running_var / num_batches_tracked buffers, in this order.
BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
FPN_CHANNELS = 256
GN_GROUPS = 32
BN_EPS = GN_EPS = 1e-5


def _bn(layout, prefix, channels):
    for name in BN_KEYS:
        layout[f"{prefix}.{name}"] = () if name == "num_batches_tracked" else (channels,)


def eod_improved_baseline_layout(depth=50, num_classes=1203, num_anchors=2, release_010=False):
    """``OrderedDict(key -> shape)`` of the reference's ResNet-FPN-RetinaHeadWithIOU state dict.

    ``release_010``: files of the 0.1.0 code, whose ResNet registers ``conv1`` and ``bn1`` as
    attributes before putting the same modules into ``layer0``, so both names are saved.
    """
    layout = OrderedDict()
    # ResNet.__init__: [self.conv1, self.bn1 (0.1.0 only)], layer0 = Sequential(conv1, norm1,
    # relu, maxpool), then layer1..4 of Bottlenecks.
    if release_010:
        layout["backbone.conv1.weight"] = (64, 3, 7, 7)
        _bn(layout, "backbone.bn1", 64)
    layout["backbone.layer0.0.weight"] = (64, 3, 7, 7)
    _bn(layout, "backbone.layer0.1", 64)
    inplanes = 64
    for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), BLOCKS[depth]), start=1):
        for b in range(blocks):
            p = f"backbone.layer{stage}.{b}"
            # Bottleneck: conv1 1x1, bn1, conv2 3x3, bn2, conv3 1x1 (x4), bn3, downsample
            layout[f"{p}.conv1.weight"] = (planes, inplanes, 1, 1)
            _bn(layout, f"{p}.bn1", planes)
            layout[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            _bn(layout, f"{p}.bn2", planes)
            layout[f"{p}.conv3.weight"] = (planes * 4, planes, 1, 1)
            _bn(layout, f"{p}.bn3", planes * 4)
            if b == 0:  # stride 2 or 64 != 256 channels: Sequential(conv 1x1, bn)
                layout[f"{p}.downsample.0.weight"] = (planes * 4, inplanes, 1, 1)
                _bn(layout, f"{p}.downsample.1", planes * 4)
            inplanes = planes * 4
    # FPN(start_level=3, num_level=5, downsample="conv"): per input level a lateral 1x1 and an
    # output 3x3 conv (build_conv_norm without norm: plain Conv2d with bias), then p6_conv and
    # p7_conv (3x3, stride 2, bias).
    for level, channels in zip((3, 4, 5), (512, 1024, 2048)):
        layout[f"neck.c{level}_lateral.weight"] = (FPN_CHANNELS, channels, 1, 1)
        layout[f"neck.c{level}_lateral.bias"] = (FPN_CHANNELS,)
        layout[f"neck.p{level}_conv.weight"] = (FPN_CHANNELS, FPN_CHANNELS, 3, 3)
        layout[f"neck.p{level}_conv.bias"] = (FPN_CHANNELS,)
    for level in (6, 7):
        layout[f"neck.p{level}_conv.weight"] = (FPN_CHANNELS, FPN_CHANNELS, 3, 3)
        layout[f"neck.p{level}_conv.bias"] = (FPN_CHANNELS,)
    # RetinaSubNet.build: 4 x build_conv_norm(activation=True) = [conv (no bias), gn, relu],
    # flattened into one Sequential; then the prediction convs and iou_pred (RetinaHeadWithIOU).
    for tower in ("cls_subnet", "box_subnet"):
        for i in range(4):
            layout[f"roi_head.{tower}.{3 * i}.weight"] = (FPN_CHANNELS, FPN_CHANNELS, 3, 3)
            layout[f"roi_head.{tower}.{3 * i + 1}.weight"] = (FPN_CHANNELS,)
            layout[f"roi_head.{tower}.{3 * i + 1}.bias"] = (FPN_CHANNELS,)
    layout["roi_head.cls_subnet_pred.weight"] = (num_anchors * num_classes, FPN_CHANNELS, 3, 3)
    layout["roi_head.cls_subnet_pred.bias"] = (num_anchors * num_classes,)
    layout["roi_head.box_subnet_pred.weight"] = (num_anchors * 4, FPN_CHANNELS, 3, 3)
    layout["roi_head.box_subnet_pred.bias"] = (num_anchors * 4,)
    layout["roi_head.iou_pred.weight"] = (num_anchors, FPN_CHANNELS, 3, 3)
    layout["roi_head.iou_pred.bias"] = (num_anchors,)
    for name in ("pos_grad", "neg_grad", "pos_neg"):
        layout[f"post_process.cls_loss.{name}"] = (num_classes,)
    return layout


def random_eod_state_dict(layout, seed=0):
    """Random tensors for ``layout`` at scales that keep a deep network's activations O(1):
    conv weights ~ N(0, 1/fan_in), BN statistics and affine parameters near identity, counters
    as int64 as in the reference's files. The 0.1.0 stem aliases share the stem's tensors."""
    g = torch.Generator().manual_seed(seed)
    aliases = (("backbone.conv1.", "backbone.layer0.0."), ("backbone.bn1.", "backbone.layer0.1."))
    out = OrderedDict()
    for key, shape in layout.items():
        if key.startswith(tuple(alias for alias, _ in aliases)):
            out[key] = None  # filled below; the other values do not depend on the aliases
            continue
        name = key.rsplit(".", 1)[-1]
        if name == "num_batches_tracked":
            out[key] = torch.tensor(int(torch.randint(0, 10 ** 6, (), generator=g)))
        elif name == "running_var":
            out[key] = 0.5 + torch.rand(shape, generator=g)
        elif name == "running_mean" or (name == "bias" and len(shape) == 1):
            out[key] = 0.1 * torch.randn(shape, generator=g)
        elif len(shape) == 1:  # BN / GN weight, EFL statistics
            out[key] = 0.5 + torch.rand(shape, generator=g)
        else:
            fan_in = math.prod(shape[1:])
            out[key] = torch.randn(shape, generator=g) / math.sqrt(fan_in)
    for alias, key in aliases:
        for k in list(out):
            if k.startswith(alias):
                out[k] = out[key + k[len(alias):]]
    return out


def _frozen_bn(x, sd, prefix):
    # nn.BatchNorm2d in eval mode (the reference's FrozenBatchNorm2d never trains).
    return F.batch_norm(x, sd[prefix + ".running_mean"], sd[prefix + ".running_var"],
                        sd[prefix + ".weight"], sd[prefix + ".bias"], training=False, eps=BN_EPS)


def _resnet(x, sd, depth):
    # layer0: 7x7/2 conv, bn, relu, 3x3/2 max pool
    x = F.conv2d(x, sd["backbone.layer0.0.weight"], stride=2, padding=3)
    x = F.relu(_frozen_bn(x, sd, "backbone.layer0.1"))
    x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
    outs = []
    for stage, blocks in enumerate(BLOCKS[depth], start=1):
        for b in range(blocks):
            p = f"backbone.layer{stage}.{b}"
            # "pytorch" style: the stride is on the 3x3 conv (first block of layers 2-4)
            stride = 2 if (b == 0 and stage > 1) else 1
            y = F.relu(_frozen_bn(F.conv2d(x, sd[f"{p}.conv1.weight"]), sd, f"{p}.bn1"))
            y = F.conv2d(y, sd[f"{p}.conv2.weight"], stride=stride, padding=1)
            y = F.relu(_frozen_bn(y, sd, f"{p}.bn2"))
            y = _frozen_bn(F.conv2d(y, sd[f"{p}.conv3.weight"]), sd, f"{p}.bn3")
            if b == 0:
                x = _frozen_bn(F.conv2d(x, sd[f"{p}.downsample.0.weight"], stride=stride), sd,
                               f"{p}.downsample.1")
            x = F.relu(y + x)
        outs.append(x)
    return outs[1:]  # out_layers [2, 3, 4]: C3, C4, C5


def _conv(x, sd, prefix, **kwargs):
    return F.conv2d(x, sd[prefix + ".weight"], sd.get(prefix + ".bias"), **kwargs)


def _fpn(features, sd):
    laterals = [_conv(f, sd, f"neck.c{level}_lateral") for f, level in zip(features, (3, 4, 5))]
    for i in (1, 0):  # top-down: nearest upsampling to the exact size of the finer level
        laterals[i] = laterals[i] + F.interpolate(laterals[i + 1], size=laterals[i].shape[-2:],
                                                  mode="nearest")
    outs = [_conv(lat, sd, f"neck.p{level}_conv", padding=1) for lat, level in zip(laterals, (3, 4, 5))]
    # P6 from the C5 *lateral* (untouched by the top-down sums), P7 from P6, no ReLU between.
    p6 = _conv(laterals[2], sd, "neck.p6_conv", stride=2, padding=1)
    p7 = _conv(p6, sd, "neck.p7_conv", stride=2, padding=1)
    return outs + [p6, p7]


def _tower(x, sd, tower):
    for i in range(4):
        x = F.conv2d(x, sd[f"roi_head.{tower}.{3 * i}.weight"], padding=1)  # no bias
        x = F.group_norm(x, GN_GROUPS, sd[f"roi_head.{tower}.{3 * i + 1}.weight"],
                         sd[f"roi_head.{tower}.{3 * i + 1}.bias"], eps=GN_EPS)
        x = F.relu(x)
    return x


def eod_improved_baseline_forward(sd, image, depth=50):
    """The reference's raw head outputs for a normalised image batch (N, 3, H, W):
    ``(cls, box, iou)``, each a list over P3..P7 of (N, A*C, H, W), (N, A*4, H, W), (N, A, H, W)."""
    features = _fpn(_resnet(image, sd, depth), sd)
    cls, box, iou = [], [], []
    for f in features:  # RetinaHeadWithIOU.forward_net, shared over levels
        cls_feature, box_feature = _tower(f, sd, "cls_subnet"), _tower(f, sd, "box_subnet")
        cls.append(_conv(cls_feature, sd, "roi_head.cls_subnet_pred", padding=1))
        box.append(_conv(box_feature, sd, "roi_head.box_subnet_pred", padding=1))
        iou.append(_conv(box_feature, sd, "roi_head.iou_pred", padding=1))  # on the box tower
    return cls, box, iou
