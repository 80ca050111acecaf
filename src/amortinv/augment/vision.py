"""Batched, per-sample-random image augmentations driven by an invariance descriptor.

``VisionAugment(space, size)(images, i)`` returns the two views of a contrastive step for the
binary descriptor ``i``: only the ops of the factors switched on are applied (SPEC section 2).
Random parameters are drawn per sample; all ops are kornia modules, so they run batched on
whatever device the images are on, and the data loader only needs to decode uint8 images.

Op names usable in an ``InvarianceSpace``'s ``ops``: ``crop``, ``flip``, ``color_jitter``,
``grayscale``, ``blur``, ``solarize``. Without ``crop`` both views are the same deterministic
resize + centre crop of the image. Recipes set the op probabilities:

- ``simclr``: jitter(0.4, 0.4, 0.4, 0.1) p=0.8, grayscale p=0.2, blur p=0.5 (sigma U[0.1, 2]).
- ``moco``: ``simclr`` plus solarize p=0.2, switched with whichever factor owns ``color_jitter``.
- ``reference``: the released paper code's appearance group, jitter, grayscale and blur at
  p=1 (every appearance view is grey); only for comparisons.

Randomness comes from torch's global generator (kornia samples from it), so
``torch.manual_seed`` makes a run reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import kornia.augmentation as KA
import torch
import torchvision.transforms.v2.functional as TF
from torch import nn

from amortinv.spaces import InvarianceSpace

__all__ = [
    "VisionAugment", "Recipe", "RECIPES", "IMAGENET_MEAN", "IMAGENET_STD", "to_float_images", "resize_center", "normalise",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
OP_ORDER = ("crop", "flip", "color_jitter", "grayscale", "blur", "solarize")


@dataclass(frozen=True)
class Recipe:
    """Probabilities and ranges of the vision ops (SPEC section 2)."""

    crop_scale: tuple[float, float] = (0.2, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_p: float = 0.5
    solarize_p: float = 0.0


RECIPES: dict[str, Recipe] = {
    "simclr": Recipe(),
    "moco": Recipe(solarize_p=0.2),
    "reference": Recipe(jitter_p=1.0, grayscale_p=1.0, blur_p=1.0),
}


def blur_kernel_size(side: int) -> int:
    """An odd Gaussian kernel size of about 10% of the image side (at least 3)."""
    return max(3, int(0.1 * side) // 2 * 2 + 1)


def _build_op(name: str, size: tuple[int, int], r: Recipe) -> nn.Module:
    factories: dict[str, Callable[[], nn.Module]] = {
        "crop": lambda: KA.RandomResizedCrop(size, scale=r.crop_scale, ratio=r.crop_ratio),
        "flip": lambda: KA.RandomHorizontalFlip(p=r.flip_p),
        "color_jitter": lambda: KA.ColorJitter(*r.jitter, p=r.jitter_p),
        "grayscale": lambda: KA.RandomGrayscale(p=r.grayscale_p),
        "blur": lambda: KA.RandomGaussianBlur(blur_kernel_size(min(size)), sigma=r.blur_sigma, p=r.blur_p),
        "solarize": lambda: KA.RandomSolarize(thresholds=0.0, additions=0.0, p=r.solarize_p),
    }
    return factories[name]()


def to_float_images(images: torch.Tensor) -> torch.Tensor:
    """Check an image batch (B, 3, H, W), uint8 or float in [0, 1], and return it as float in [0, 1]."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor of shape (B, 3, H, W), got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return images.float().div_(255.0)
    if not torch.is_floating_point(images):
        raise ValueError(f"images must be uint8 or float in [0, 1], got dtype {images.dtype}")
    lo, hi = images.aminmax()
    if lo < 0 or hi > 1:
        raise ValueError(f"float images must lie in [0, 1], got values in [{lo.item():.3g}, {hi.item():.3g}]")
    return images.float()


def resize_center(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Deterministic resize (to cover ``size``) + centre crop of a batch; returns float (B, 3, H, W) in [0, 1]."""
    x = to_float_images(images)
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    h, w = x.shape[-2:]
    scale = max(size[0] / h, size[1] / w)
    x = TF.resize(x, [max(size[0], round(h * scale)), max(size[1], round(w * scale))], antialias=True)
    return TF.center_crop(x, list(size)).clamp_(0, 1)


def normalise(x: torch.Tensor, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> torch.Tensor:
    """(x - mean) / std per channel for a float batch (B, 3, H, W) in [0, 1]."""
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


class VisionAugment(nn.Module):
    """Descriptor-conditioned two-view augmentation for image batches.

    Args:
        space: the invariance space; every op named in its ``ops`` must be a vision op.
        size: output side (int) or (H, W).
        recipe: ``simclr``, ``moco``, ``reference`` or a ``Recipe``.
        mean, std: normalisation applied to both views.
    """

    def __init__(
        self,
        space: InvarianceSpace,
        size: int | Sequence[int],
        recipe: str | Recipe = "simclr",
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        self.space = space
        self.size = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
        if isinstance(recipe, str):
            if recipe not in RECIPES:
                raise ValueError(f"unknown augmentation recipe '{recipe}'; choose from {sorted(RECIPES)}")
            recipe = RECIPES[recipe]
        self.recipe = recipe
        unknown = sorted({op for ops in space.ops.values() for op in ops} - set(OP_ORDER))
        if unknown:
            raise ValueError(
                f"invariance space '{space.name}' uses ops the vision engine does not know: {unknown}; "
                f"vision ops are {list(OP_ORDER)}"
            )
        self.mean, self.std = tuple(mean), tuple(std)
        self._ops = nn.ModuleDict({name: _build_op(name, self.size, recipe) for name in OP_ORDER})

    def active_ops(self, descriptor: torch.Tensor | Sequence[float]) -> tuple[str, ...]:
        """The op names switched on by a binary descriptor, in application order."""
        d = self.space.validate(descriptor, binary=True)
        on = {op for factor, v in zip(self.space.factors, d.tolist()) if v == 1 for op in self.space.ops[factor]}
        if "color_jitter" in on and self.recipe.solarize_p > 0:
            on.add("solarize")
        return tuple(op for op in OP_ORDER if op in on)

    def base(self, images: torch.Tensor) -> torch.Tensor:
        """Deterministic resize (to cover the output) + centre crop to the output size; (B,3,H,W) float."""
        return resize_center(images, self.size)

    def view(self, images: torch.Tensor, descriptor: torch.Tensor | Sequence[float]) -> torch.Tensor:
        """One randomly augmented, normalised view (B, 3, H_out, W_out) for a binary descriptor."""
        ops = self.active_ops(descriptor)
        x = to_float_images(images) if "crop" in ops else self.base(images)
        for name in ops:
            x = self._ops[name](x)
        return self.normalise(x)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """(x - mean) / std on a float batch in [0, 1]."""
        return normalise(x, self.mean, self.std)

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of ``normalise``, clamped to [0, 1] (for display)."""
        m = torch.as_tensor(self.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        s = torch.as_tensor(self.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return (x * s + m).clamp(0, 1)

    def forward(
        self, images: torch.Tensor, descriptor: torch.Tensor | Sequence[float]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Two independent views of ``images`` (B, 3, H, W) for ``descriptor`` (K,)."""
        return self.view(images, descriptor), self.view(images, descriptor)
