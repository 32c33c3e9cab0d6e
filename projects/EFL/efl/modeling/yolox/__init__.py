"""YOLOX-IP's networks: CSPDarknet, the PAFPN (a Detectron2 backbone) and the decoupled head."""
from .blocks import SPP, Bottleneck, ConvBNAct, CSPLayer, Focus
from .darknet import CSPDarknet
from .decoupled_head import YOLOXDecoupledHead
from .pafpn import YOLOXPAFPN

__all__ = [
    "SPP",
    "Bottleneck",
    "CSPDarknet",
    "CSPLayer",
    "ConvBNAct",
    "Focus",
    "YOLOXDecoupledHead",
    "YOLOXPAFPN",
]
