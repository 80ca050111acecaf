"""Batched, per-sample-random image augmentations driven by an invariance descriptor.

``VisionAugment(space, size)(images, i)`` returns the two views of a contrastive step for the
binary descriptor ``i``: only the ops of the factors switched on are applied (SPEC section 2).
Random parameters are drawn per sample on the CPU (``amortinv.augment.params``, torchvision's
distributions) and every op is a few whole-batch tensor operations (``amortinv.augment.ops``:
crop + flip + resize as one ``grid_sample`` straight from the uint8 batch, the four colour-jitter
ops in a per-sample random order (brightness, contrast and saturation as one per-sample colour
matrix per position, exact HSV hue), grayscale, blur as per-sample separable taps, solarize,
normalisation). They run on whatever device the images are on without waiting for the host, and
the data loader only decodes uint8 images. The samples are ordered by the position of their hue
in the jitter, so the samples that get hue at one position are one contiguous slice (on any
device). The other ops applied to some samples only (grayscale, blur, solarize, flip without crop)
touch just those samples on the CPU, where the batch is also processed in cache-sized chunks;
elsewhere they are computed for the batch and selected by mask (no host synchronisation). How the
batch is split never changes a view: the crops' antialiasing grid is chosen once per batch
(``ViewParams.supersample``).

Op names usable in an ``InvarianceSpace``'s ``ops``: ``crop``, ``flip``, ``color_jitter``,
``grayscale``, ``blur``, ``solarize``. Without ``crop`` both views are the same deterministic
resize + centre crop of the image. Recipes set the op probabilities:

- ``simclr``: jitter(0.4, 0.4, 0.4, 0.1) p=0.8, grayscale p=0.2, blur p=0.5 (sigma U[0.1, 2]).
- ``moco``: ``simclr`` plus solarize p=0.2, switched with whichever factor owns ``color_jitter``.
- ``reference``: the released paper code's appearance group, jitter, grayscale and blur at
  p=1 (every appearance view is grey); only for comparisons.

Randomness comes from torch's global CPU generator, so ``torch.manual_seed`` reproduces the views
exactly on the CPU (and up to floating-point differences on other devices).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
import torchvision.transforms.v2.functional as TF
from torch import nn

from amortinv.augment import ops as O
from amortinv.augment.common import active_ops, check_space_ops, pick_recipe
from amortinv.augment.params import ViewParams, sample_view_params
from amortinv.spaces import InvarianceSpace

__all__ = [
    "VisionAugment",
    "Recipe",
    "RECIPES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "to_float_images",
    "resize_center",
    "normalise",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
OP_ORDER = ("crop", "flip", "color_jitter", "grayscale", "blur", "solarize")
CPU_CHUNK_BYTES = 4 << 20  # float32 output per chunk on the CPU (see ``VisionAugment.apply``)


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


def to_float_images(images: torch.Tensor) -> torch.Tensor:
    """Check an image batch (B, 3, H, W), uint8 or float in [0, 1], and return it as float in [0, 1].

    The value range of a float batch is checked on the CPU only (elsewhere it would make the host
    wait for the device); a float32 batch is returned as is, not copied.
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor of shape (B, 3, H, W), got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return images.float().div_(255.0)
    if not torch.is_floating_point(images):
        raise ValueError(f"images must be uint8 or float in [0, 1], got dtype {images.dtype}")
    lo, hi = images.aminmax() if images.device.type == "cpu" else (0, 1)
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


def normalise(
    x: torch.Tensor, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> torch.Tensor:
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
        self.recipe = pick_recipe(recipe, RECIPES, "vision")
        check_space_ops(space, OP_ORDER, "vision")
        self.mean, self.std = tuple(mean), tuple(std)
        self._active: dict[tuple[float, ...], tuple[str, ...]] = {}

    def active_ops(self, descriptor: torch.Tensor | Sequence[float]) -> tuple[str, ...]:
        """The op names switched on by a binary descriptor, in application order."""
        key = tuple(torch.as_tensor(descriptor, dtype=torch.float32, device="cpu").tolist())
        if key not in self._active:
            brings = {"color_jitter": "solarize"} if self.recipe.solarize_p > 0 else None
            self._active[key] = active_ops(self.space, key, OP_ORDER, brings)
        return self._active[key]

    def base(self, images: torch.Tensor) -> torch.Tensor:
        """Deterministic resize (to cover the output) + centre crop to the output size; (B,3,H,W) float."""
        return resize_center(images, self.size)

    def eval_input(self, images: torch.Tensor) -> torch.Tensor:
        """Deterministic model input: the normalised ``base`` view (B, 3, H_out, W_out)."""
        return self.normalise(self.base(images))

    def sample(self, images: torch.Tensor, descriptor: torch.Tensor | Sequence[float]) -> ViewParams:
        """Random parameters (CPU) of one view of ``images`` (B, 3, H, W) for a binary descriptor."""
        return sample_view_params(self.active_ops(descriptor), self.recipe, len(images), *images.shape[-2:])

    def apply(self, images: torch.Tensor, p: ViewParams) -> torch.Tensor:
        """The view of ``images`` (B, 3, H, W) for parameters ``p``: float (B, 3, *size), normalised.

        The samples are ordered by the jitter position of their hue, so that the samples that get
        hue at one position are one contiguous slice, changed in place (on a GPU: instead of hue
        for the whole batch at every position, selected by mask). On the CPU the batch is also
        processed in chunks of about ``CPU_CHUNK_BYTES`` of output, so that the chain of ops works
        in cache (measured 1.5x faster at 96x96).
        """
        if p.boxes is not None and p.supersample is None:
            p = replace(p, supersample=O.supersampling(p.boxes, self.size))
        on_cpu = images.device.type == "cpu"
        n = max(1, CPU_CHUNK_BYTES // (12 * self.size[0] * self.size[1])) if on_cpu else len(images)
        order = _by_hue_position(p)
        if order is None and len(images) <= n:
            return self._view_of(images, p)
        out = torch.empty(len(images), 3, *self.size, device=images.device)
        for k in range(0, len(images), n):
            part = slice(k, k + n) if order is None else order[k : k + n]
            rows = part if on_cpu or order is None else part.to(images.device, non_blocking=True)
            out[rows] = self._view_of(images[rows], p.select(part))
        return out

    def _view_of(self, images: torch.Tensor, p: ViewParams) -> torch.Tensor:
        x = self._geometry(images, p)
        if p.jitter is not None:
            x = self._jitter(x, p)
        if p.grayscale is not None:
            x = _on_samples(x, p.grayscale, lambda xs, _: O.grayscale(xs))
        if p.blur is not None:
            k = blur_kernel_size(min(self.size))
            x = _on_samples(x, p.blur, lambda xs, idx: O.gaussian_blur(xs, p.blur_sigma[idx], k))
        if p.solarize is not None:
            x = _on_samples(x, p.solarize, lambda xs, _: O.solarize(xs))
        m, s = (
            torch.as_tensor(v, dtype=x.dtype).view(1, -1, 1, 1).to(x.device, non_blocking=True)
            for v in (self.mean, self.std)
        )
        return x.sub_(m).div_(s)

    def _geometry(self, images: torch.Tensor, p: ViewParams) -> torch.Tensor:
        """Crop + flip + resize in one resampling (a fresh float tensor in [0, 1])."""
        if p.boxes is None:
            x = self.base(images)
            x = x.clone() if x.data_ptr() == images.data_ptr() else x
            return x if p.flip is None else _on_samples(x, p.flip, lambda xs, _: xs.flip(-1))
        x = to_float_images(images)
        flip = p.flip if p.flip is not None else torch.zeros(len(x), dtype=torch.bool)
        return O.resized_crop_flip(x, p.boxes, flip, self.size, p.supersample)

    @staticmethod
    def _jitter(x: torch.Tensor, p: ViewParams) -> torch.Tensor:
        """Brightness, contrast, saturation and hue, in each sample's own random order: at each of the
        four positions one colour-matrix product over the batch (identity for the samples whose op
        there is hue or who are not jittered), then hue on the samples whose op there is hue. (Grouping the
        samples by their whole order instead, so that each is touched by each op once, measured slower on
        the CPU: 357-400 vs 277-314 us per 96x96 image.)"""
        ones = torch.ones(len(x))
        for k in range(4):
            op = torch.where(p.jitter, p.jitter_order[:, k], -1)
            f = [torch.where(op == j, p.jitter_factors[:, j], ones) for j in range(3)]
            x = O.linear_jitter(x, *f)
            shift = p.jitter_factors[:, 3]
            x = _on_samples(x, (op == 3) & (shift != 0), lambda xs, idx: O.hue(xs, shift[idx]))
        return x

    def view(self, images: torch.Tensor, descriptor: torch.Tensor | Sequence[float]) -> torch.Tensor:
        """One randomly augmented, normalised view (B, 3, H_out, W_out) for a binary descriptor."""
        return self.apply(images, self.sample(images, descriptor))

    def views_with_params(
        self, images: torch.Tensor, descriptor: torch.Tensor | Sequence[float]
    ) -> tuple[torch.Tensor, ...]:
        """Two views (B, 3, H_out, W_out) and the parameters each was made with, (B, 16) rows of
        ``ViewParams.vector`` in the order of the samples, on the images' device (copied from pinned
        memory without waiting): ``(v1, v2, w1, w2)``, for the methods that use them (AugSelf, CASSLE)."""
        p1, p2 = self.sample(images, descriptor), self.sample(images, descriptor)
        h, w = images.shape[-2:]
        vectors = [_to_device(p.vector(h, w), images.device) for p in (p1, p2)]
        return self.apply(images, p1), self.apply(images, p2), *vectors

    def leave_one_out_views(
        self, images: torch.Tensor, descriptor: torch.Tensor | Sequence[float], factors: Sequence[str]
    ) -> list[torch.Tensor]:
        """LooC's views of ``images`` (B, 3, H, W): the query, a key with all parameters drawn anew, then
        for each of ``factors`` a key that shares the parameters of that factor's ops with the query and
        draws the others anew; each (B, 3, H_out, W_out)."""
        query = self.sample(images, descriptor)
        keys = [self.sample(images, descriptor)]
        keys += [self.sample(images, descriptor).sharing(query, self.space.ops[f]) for f in factors]
        return [self.apply(images, p) for p in (query, *keys)]

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


def _to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A CPU tensor on ``device``; to a GPU through pinned memory, so the host does not wait."""
    if device.type == "cpu":
        return x
    return x.pin_memory().to(device, non_blocking=True) if torch.cuda.is_available() else x.to(device)


def _by_hue_position(p: ViewParams) -> torch.Tensor | None:
    """Sample indices (B,) ordered by the jitter position of their hue (not jittered: last), stably;
    None without colour jitter."""
    if p.jitter is None:
        return None
    position = torch.where(p.jitter, p.jitter_order.argsort(dim=1)[:, 3], 4)
    return torch.argsort(position, stable=True)


def _on_samples(
    x: torch.Tensor,
    mask: torch.Tensor,
    fn: Callable[[torch.Tensor, torch.Tensor | slice], torch.Tensor],
    subset: bool | None = None,
) -> torch.Tensor:
    """``fn(x[idx], idx)`` for the samples where ``mask`` (B,) is set, the rest of ``x`` unchanged.

    ``mask`` is a CPU tensor. Samples that form one contiguous run are computed on that slice of
    ``x`` (on any device: no index leaves the host). Otherwise, with ``subset`` (the default on
    the CPU) only those samples are gathered and computed; without (the default elsewhere) ``fn``
    runs on the whole batch and a mask selects, so the host never waits for the device. All give
    the same result.
    """
    idx = mask.nonzero().squeeze(1)
    if len(idx) == 0:
        return x
    if len(idx) == len(x):
        return fn(x, slice(None))
    if int(idx[-1] - idx[0]) + 1 == len(idx):
        run = slice(int(idx[0]), int(idx[-1]) + 1)
        x[run] = fn(x[run], run)
    elif x.device.type == "cpu" if subset is None else subset:
        x[idx] = fn(x[idx], idx)
    else:
        return torch.where(mask.to(x.device, non_blocking=True).view(-1, 1, 1, 1), fn(x, slice(None)), x)
    return x
