"""The compute device a command runs on: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``, checked up front."""

from __future__ import annotations

import re

__all__ = ["check_device_name", "resolve_device"]


def check_device_name(device: str) -> None:
    """Refuse a device name that is not ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (no torch import: settings call it)."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", str(device)):
        raise ValueError(f"--device must be auto, cpu, cuda or cuda:N, got '{device}'")


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; a GPU that is asked for must exist.

    Raises:
        ValueError: naming the option when ``cuda`` is asked for without a visible GPU, or the
            device name is not one of the above.
    """
    check_device_name(device)
    if device == "cpu":
        return device
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        raise ValueError(f"--device {device}: no CUDA GPU is visible to PyTorch here; use --device cpu (or auto)")
    index = int(device.split(":")[1]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        raise ValueError(f"--device {device}: only {torch.cuda.device_count()} GPU(s) are visible")
    return device
