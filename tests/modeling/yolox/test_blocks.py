"""YOLOX-IP blocks: the reference's Focus phase order, residual adds where the reference has them,
and its BatchNorm settings."""
import efl  # noqa: F401  (compatibility fixes before detectron2)

import pytest
import torch
from torch import nn

from efl.modeling.yolox import CSPDarknet, CSPLayer, Focus, YOLOXDecoupledHead, YOLOXPAFPN
from efl.modeling.yolox.blocks import space_to_depth


def _tiny_model():
    backbone = YOLOXPAFPN(bottom_up=CSPDarknet(depth=0.33, width=0.125), depth=0.33)
    head = YOLOXDecoupledHead(num_classes=3, num_anchors=2, width=0.125)
    return backbone, head


def test_space_to_depth_stacks_phases_row0col0_row0col1_row1col0_row1col1():
    n, c, h, w = 2, 3, 6, 8
    x = torch.randn(n, c, h, w)
    out = space_to_depth(x)
    assert out.shape == (n, 4 * c, h // 2, w // 2)
    # hand-built: phase g = 2r + s holds pixels (2i + r, 2j + s)
    for g, (r, s) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        for i in range(h // 2):
            for j in range(w // 2):
                torch.testing.assert_close(
                    out[:, g * c : (g + 1) * c, i, j], x[:, :, 2 * i + r, 2 * j + s]
                )
    # the reference computes it as a reshape: (N, C, H/2, 2, W/2, 2) -> (N, 2, 2, C, H/2, W/2)
    reshaped = x.view(n, c, h // 2, 2, w // 2, 2).permute(0, 3, 5, 1, 2, 4)
    reshaped = reshaped.reshape(n, 4 * c, h // 2, w // 2)
    torch.testing.assert_close(out, reshaped)
    # Megvii's order (0,0), (1,0), (0,1), (1,1) is a different tensor
    megvii = torch.cat(
        [x[..., 0::2, 0::2], x[..., 1::2, 0::2], x[..., 0::2, 1::2], x[..., 1::2, 1::2]], dim=1
    )
    assert not torch.equal(out, megvii)


def test_focus_is_the_stem_conv_block_on_space_to_depth_and_rejects_odd_sizes():
    torch.manual_seed(0)
    focus = Focus(in_channels=3, out_channels=8).eval()
    assert focus.conv_block.conv.weight.shape == (8, 12, 3, 3)
    x = torch.randn(1, 3, 8, 8)
    torch.testing.assert_close(focus(x), focus.conv_block(space_to_depth(x)))
    with pytest.raises(ValueError, match="even"):
        focus(torch.randn(1, 3, 7, 8))


def _csp_layers(backbone):
    darknet = backbone.bottom_up
    return {
        "dark2": darknet.dark2[1],
        "dark3": darknet.dark3[1],
        "dark4": darknet.dark4[1],
        "dark5": darknet.dark5[2],
        "C3_p4": backbone.C3_p4,
        "C3_p3": backbone.C3_p3,
        "C3_n3": backbone.C3_n3,
        "C3_n4": backbone.C3_n4,
    }


@pytest.mark.parametrize(
    "name, has_residual",
    [
        ("dark2", True),
        ("dark3", True),
        ("dark4", True),
        ("dark5", False),  # the CSP after SPP
        ("C3_p4", True),  # Megvii's PAFPN has no residual here; the reference's does
        ("C3_p3", True),
        ("C3_n3", True),
        ("C3_n4", True),
    ],
)
def test_bottlenecks_add_their_input_where_the_reference_does(name, has_residual):
    torch.manual_seed(0)
    backbone, _ = _tiny_model()
    csp = _csp_layers(backbone)[name]
    assert isinstance(csp, CSPLayer) and len(csp.m) >= 1
    bottleneck = csp.m[0].eval()
    # Zero the last conv: BN (fresh running stats, weight 1, bias 0) and SiLU map 0 to 0, so the
    # block's output is its input if it has the residual add and 0 if not.
    with torch.no_grad():
        bottleneck.conv2.conv.weight.zero_()
    x = torch.randn(2, bottleneck.conv1.conv.in_channels, 4, 4)
    expected = x if has_residual else torch.zeros_like(x)
    torch.testing.assert_close(bottleneck(x), expected)


def test_every_batchnorm_has_eps_1e3_and_momentum_0p03():
    backbone, head = _tiny_model()
    modules = [*backbone.modules(), *head.modules()]
    norms = [m for m in modules if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    # every conv but the 9 prediction convs (3 outputs x 3 levels) is a ConvBNAct
    assert len(norms) == sum(1 for m in modules if isinstance(m, nn.Conv2d)) - 9
    for bn in norms:
        assert bn.eps == 1e-3 and bn.momentum == 0.03
