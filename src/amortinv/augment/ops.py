"""Batched image ops with per-sample parameters: the deterministic half of the vision engine.

Every op takes a float batch ``x`` (B, 3, H, W) in [0, 1] and per-sample parameters (B,) and is a
few whole-batch tensor operations, so it runs at memory speed on CPU and GPU. For fixed
parameters each op equals torchvision's functional op on one image (tests/augment/test_augment_ops.py
states the tolerances): ``resized_crop_flip`` is ``resized_crop`` + ``hflip`` (bilinear; exact
when the crop is upscaled, an s x s box-supersampled approximation of the antialiased resize when
it is shrunk), ``brightness`` / ``contrast`` / ``saturation`` / ``hue`` are the ``adjust_*``
functions, ``grayscale`` is ``rgb_to_grayscale``, ``gaussian_blur`` is ``gaussian_blur`` (reflect
padding) and ``solarize`` is ``solarize`` at threshold 0.5.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "GRAY_WEIGHTS",
    "resized_crop_flip",
    "gray",
    "linear_jitter",
    "hue",
    "grayscale",
    "gaussian_blur",
    "gaussian_kernels",
    "solarize",
    "supersampling",
]

GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # ITU-R 601-2 luma, as torchvision


def _per_sample(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(B,) parameters as (B, 1, 1, 1) on ``x``'s device and dtype."""
    return v.to(device=x.device, dtype=x.dtype, non_blocking=True).view(-1, 1, 1, 1)


def _axis_grid(
    start: torch.Tensor, length: torch.Tensor, size_in: int, size_out: int, flip: torch.Tensor | None
) -> torch.Tensor:
    """Normalised source coordinates (B, size_out) of a crop [start, start + length) resized to size_out.

    Bilinear with half-pixel centres (torch's ``align_corners=False``); coordinates are clamped to
    the crop's outer pixel centres, as resizing the cropped image would, and mirrored for ``flip``.
    """
    u = torch.arange(size_out, dtype=torch.float32) + 0.5
    src = start[:, None] + u[None, :] * (length / size_out)[:, None] - 0.5
    src = torch.minimum(torch.maximum(src, start[:, None]), (start + length - 1)[:, None])
    if flip is not None:
        src = torch.where(flip[:, None], (2 * start + length - 1)[:, None] - src, src)
    return (2 * src + 1) / size_in - 1


def resized_crop_flip(
    x: torch.Tensor, boxes: torch.Tensor, flip: torch.Tensor, size: tuple[int, int], supersample: int = 1
) -> torch.Tensor:
    """Crop ``boxes`` (B, 4) = (top, left, height, width) of ``x``, resize to ``size``, mirror where ``flip``.

    One ``grid_sample`` over the whole batch. ``supersample`` s > 1 samples an s x s sub-pixel grid
    per output pixel and averages it (use it when crops are shrunk, as antialiasing).
    Returns (B, C, size[0], size[1]).
    """
    s = max(1, int(supersample))
    boxes = boxes.float().cpu()
    oh, ow = size[0] * s, size[1] * s
    ys = _axis_grid(boxes[:, 0], boxes[:, 2], x.shape[-2], oh, None)
    xs = _axis_grid(boxes[:, 1], boxes[:, 3], x.shape[-1], ow, flip.cpu())
    grid = torch.stack(torch.broadcast_tensors(xs[:, None, :], ys[:, :, None]), dim=-1)
    out = F.grid_sample(
        x, grid.to(x.device, x.dtype, non_blocking=True), mode="bilinear", padding_mode="border", align_corners=False
    )
    return F.avg_pool2d(out, s) if s > 1 else out


def gray(x: torch.Tensor) -> torch.Tensor:
    """Luma (B, 1, H, W) of an RGB batch."""
    r, g, b = x.unbind(1)
    return (r * GRAY_WEIGHTS[0]).add_(g, alpha=GRAY_WEIGHTS[1]).add_(b, alpha=GRAY_WEIGHTS[2]).unsqueeze(1)


def linear_jitter(
    x: torch.Tensor, brightness: torch.Tensor, contrast: torch.Tensor, saturation: torch.Tensor
) -> torch.Tensor:
    """Brightness, contrast and saturation factors (B,) applied as ONE colour matrix per sample.

    Each sample should have at most one factor different from 1 (the others are identities): the
    result is ``clamp(a x + b gray(x) + c mean(gray(x)))``, which is ``adjust_brightness``,
    ``adjust_saturation`` or ``adjust_contrast`` for that sample, computed as a per-sample 3x3
    matrix (a I + b 1 w^T, w the luma weights) and offset, one batched matrix product over the
    pixels (measured 2.5x faster on the CPU than the same blend written with the grey plane).
    Returns a new (B, 3, H, W) tensor; a sample whose factors are all 1 is returned bit for bit.
    """
    bright, con, sat = (
        v.to(device=x.device, dtype=x.dtype, non_blocking=True) for v in (brightness, contrast, saturation)
    )
    w = torch.tensor(GRAY_WEIGHTS, dtype=x.dtype, device=x.device)
    eye = torch.eye(3, dtype=x.dtype, device=x.device)
    matrix = (bright * con * sat).view(-1, 1, 1) * eye + (1 - sat).view(-1, 1, 1) * w.view(1, 1, 3)
    means = x.mean(dim=(-2, -1))  # (B, 3); the luma of the means as elementwise products, not a matrix-vector product,
    mean_gray = (
        means[:, 0] * w[0] + means[:, 1] * w[1] + means[:, 2] * w[2]
    )  # whose rounding depends on the batch size (gemv)
    offset = ((1 - con) * mean_gray).view(-1, 1, 1, 1)
    return torch.einsum("bij,bjhw->bihw", matrix, x).add_(offset).clamp_(0, 1)


def hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate hue by ``shift`` (B,) turns, exactly as ``adjust_hue`` (HSV, value and saturation kept).

    Uses the closed form of HSV -> RGB: channel n = max - chroma * clamp(min(k, 4 - k), 0, 1) with
    k = (n + 6 h) mod 6 for n = 5, 3, 1 (max and min as elementwise maxima of the channel planes:
    a reduction over the channel dimension measured 2x slower on the CPU).
    """
    r, g, b = x.unbind(1)
    hi = torch.maximum(torch.maximum(r, g), b)
    chroma = hi - torch.minimum(torch.minimum(r, g), b)
    safe = torch.where(chroma > 0, chroma, 1.0)
    h = torch.where(hi == r, (g - b) / safe, torch.where(hi == g, (b - r) / safe + 2, (r - g) / safe + 4))
    h6 = h + 6 * _per_sample(shift, x)[:, 0]
    out = torch.empty_like(x)
    for c, n in enumerate((5.0, 3.0, 1.0)):
        k = (h6 + n).remainder_(6)
        torch.sub(hi, chroma * torch.minimum(k, 4 - k).clamp_(0, 1), out=out[:, c])
    return out


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """Three-channel luma (B, 3, H, W)."""
    return gray(x).expand_as(x).clone()


def gaussian_kernels(sigma: torch.Tensor, size: int) -> torch.Tensor:
    """Normalised 1-D Gaussian kernels (B, size) for per-sample ``sigma`` (B,), as torchvision's."""
    t = torch.linspace(-(size - 1) / 2, (size - 1) / 2, size)
    k = torch.exp(-0.5 * (t[None, :] / sigma.float().cpu()[:, None]) ** 2)
    return k / k.sum(dim=1, keepdim=True)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, size: int) -> torch.Tensor:
    """Separable Gaussian blur with per-sample ``sigma`` (B,), odd kernel ``size``, reflect padding.

    Each axis is ``size`` shifted multiply-adds of the padded batch with per-sample tap weights
    (measured faster on the CPU than a grouped convolution with B*C groups).
    """
    h, w = x.shape[-2:]
    pad = size // 2
    if pad >= min(h, w):
        raise ValueError(f"blur kernel {size} is too large for {h}x{w} images")
    taps = gaussian_kernels(sigma, size).to(x.device, x.dtype, non_blocking=True).view(-1, 1, 1, 1, size)
    y = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    rows = y[..., 0:w] * taps[..., 0]
    for t in range(1, size):
        rows.addcmul_(y[..., t : t + w], taps[..., t])
    out = rows[..., 0:h, :] * taps[..., 0]
    for t in range(1, size):
        out.addcmul_(rows[..., t : t + h, :], taps[..., t])
    return out


def solarize(x: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Invert values at or above ``threshold``."""
    return torch.where(x >= threshold, 1 - x, x)


def supersampling(boxes: torch.Tensor, size: tuple[int, int]) -> int:
    """Sub-pixel grid side for antialiasing: the largest shrink factor of any crop, rounded up."""
    shrink = max(float((boxes[:, 2] / size[0]).max()), float((boxes[:, 3] / size[1]).max()), 1.0)
    return math.ceil(shrink - 1e-6)
