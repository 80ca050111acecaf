"""Descriptor-driven augmentations (pure PyTorch: batched ops with per-sample parameters)."""

from amortinv.augment.vision import RECIPES, Recipe, VisionAugment, normalise, resize_center, to_float_images

__all__ = ["VisionAugment", "Recipe", "RECIPES", "to_float_images", "resize_center", "normalise"]
