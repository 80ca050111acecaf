"""Loading what the commands share: a saved encoder and its invariance space, plain baselines, and how to read audio
for an encoder (each checked against the dataset it will see). Torch is imported inside the functions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from amortinv.encoders.base import Encoder
    from amortinv.spaces import InvarianceSpace

__all__ = ["audio_reading", "check_fits_data", "load_plain_encoder", "load_encoder_and_space"]


def audio_reading(encoder: Encoder, clip_seconds: float | None) -> dict[str, Any]:
    """How to read audio for ``encoder``: at its front end's sample rate, windows of ``clip_seconds`` (ignored by image datasets)."""
    return {"sample_rate": (encoder.config.get("frontend") or {}).get("sample_rate"), "clip_seconds": clip_seconds}


def check_fits_data(encoder: Encoder, path: str, data: str | None, option: str = "--encoder") -> None:
    """Refuse an encoder of one modality (images, audio) for a dataset of the other, naming both."""
    from amortinv.data import dataset_modality

    if data is not None and encoder.modality != dataset_modality(data):
        raise ValueError(
            f"{option} {path} was made for {encoder.modality} inputs but --data {data} is {dataset_modality(data)}: "
            f"use an encoder pre-trained on {dataset_modality(data)} data"
        )


def load_plain_encoder(path: str, data: str | None, option: str) -> Encoder:
    """A saved plain encoder given as a baseline (``option`` names where), checked against the data."""
    from amortinv.encoders import load_encoder

    encoder = load_encoder(path)
    if encoder.conditioned:
        raise ValueError(
            f"{option} {path} is a conditioned encoder: baselines are plain encoders (a conditioned one goes in --encoder)"
        )
    check_fits_data(encoder, path, data, option)
    return encoder


def load_encoder_and_space(
    path: str, space: str | None = None, data: str | None = None
) -> tuple[Encoder, InvarianceSpace | None]:
    """An encoder saved by amortinv and its invariance space (from its metadata, or ``space``), checked against
    the dataset ``data`` when given."""
    from amortinv.encoders import load_encoder, read_encoder_config
    from amortinv.spaces import InvarianceSpace, load_space

    encoder = load_encoder(path)
    check_fits_data(encoder, path, data)
    meta = read_encoder_config(path).get("metadata", {})
    inv_space = (
        load_space(space) if space else (InvarianceSpace.from_config(meta["space"]) if "space" in meta else None)
    )
    if encoder.conditioned:
        if inv_space is None:
            raise ValueError(f"encoder {path} is conditioned but its metadata names no space: pass --space")
        if inv_space.dim != encoder.invariance_dim:
            raise ValueError(
                f"space '{inv_space.name}' has {inv_space.dim} factors but the encoder takes descriptors of length {encoder.invariance_dim}"
            )
    return encoder, inv_space
