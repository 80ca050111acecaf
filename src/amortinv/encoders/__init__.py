"""Encoders: plain and Hyper-ResNets, ViTs and Prompt-ViTs, and their safe save/load."""

from amortinv.encoders.base import Encoder, check_descriptor
from amortinv.encoders.hyper import HyperConv2d
from amortinv.encoders.io import load_encoder, load_pretrained_vit, read_encoder_config, save_encoder
from amortinv.encoders.registry import ENCODERS, build_encoder
from amortinv.encoders.resnet import ResNet
from amortinv.encoders.vit import InvarianceProjector, VisionTransformer

__all__ = [
    "Encoder",
    "check_descriptor",
    "HyperConv2d",
    "ResNet",
    "VisionTransformer",
    "InvarianceProjector",
    "build_encoder",
    "ENCODERS",
    "save_encoder",
    "load_encoder",
    "read_encoder_config",
    "load_pretrained_vit",
]
