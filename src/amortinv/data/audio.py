"""Audio datasets: fixed-length float waveforms (1, L) in [-1, 1] and their targets.

Readers: the Free Spoken Digit Dataset file ``fsdd.npz`` (ragged int16 waveforms, digit and
speaker labels, its standard split), a folder of ``.wav`` / ``.flac`` files (labels from class
sub-folders, a CSV of ``file,label`` rows or a file-name pattern) and a generic ``.npz``
(``audio`` (N, L) or ragged ``audio`` + ``offsets``, ``labels``, ``sample_rate``). Clips are
resampled to ``sample_rate`` when given (soxr), then cropped to ``clip_seconds``: a random window
(``crop="random"``, training) or the centre (``crop="center"``), zero-padded on both sides when
shorter.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["WaveformDataset", "load_fsdd", "load_audio_folder", "load_audio_npz", "AUDIO_EXTENSIONS"]

AUDIO_EXTENSIONS = (".wav", ".flac")


class WaveformDataset(Dataset):
    """Clips (a list of 1-D float32 tensors at ``sample_rate``) served as (1, length) windows with targets.

    Args:
        clips: waveforms in [-1, 1], any lengths >= 1.
        targets: labels (N,).
        sample_rate: of every clip, Hz.
        length: window length in samples.
        crop: ``center`` (deterministic) or ``random`` (a uniform window of clips longer than ``length``).
        classes: label names, index = label.
    """

    def __init__(
        self,
        clips: Sequence[torch.Tensor],
        targets: torch.Tensor,
        sample_rate: int,
        length: int,
        crop: str = "center",
        classes: Sequence[str] | None = None,
    ) -> None:
        if crop not in ("center", "random"):
            raise ValueError(f"crop must be 'center' or 'random', got {crop!r}")
        if length < 1:
            raise ValueError(f"clip length must be >= 1 sample, got {length}")
        if len(clips) != len(targets):
            raise ValueError(f"{len(clips)} clips but {len(targets)} targets")
        if not len(clips):
            raise ValueError("the audio dataset is empty")
        self.clips, self.targets = list(clips), torch.as_tensor(targets)
        self.sample_rate, self.length, self.crop = int(sample_rate), int(length), crop
        self.classes = list(classes) if classes is not None else None

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.window(self.clips[k]), self.targets[k]

    def input(self, k: int, generator: torch.Generator) -> torch.Tensor:
        """Clip ``k``'s (1, length) window, a random crop drawn from ``generator`` (pre-training uses a
        generator seeded by (seed, epoch, index), so a resumed run crops as the uninterrupted one)."""
        return self.window(self.clips[k], generator)

    def window(self, clip: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One (1, length) window of a clip: centred or random crop, or centred zero padding."""
        n, extra = len(clip), len(clip) - self.length
        if extra > 0:
            start = int(torch.randint(0, extra + 1, (), generator=generator)) if self.crop == "random" else extra // 2
            return clip[start : start + self.length][None]
        out = torch.zeros(1, self.length)
        out[0, (-extra) // 2 : (-extra) // 2 + n] = clip
        return out


def _check_clip(wave: np.ndarray, name: str) -> None:
    """Refuse an empty clip or one with non-finite samples, naming the file and item (``name``)."""
    if not len(wave):
        raise ValueError(f"{name}: the clip is empty (0 samples)")
    if np.issubdtype(wave.dtype, np.floating) and not np.isfinite(wave).all():
        raise ValueError(
            f"{name}: {int((~np.isfinite(wave)).sum())} of its {len(wave)} samples are not finite (NaN or inf)"
        )


def _check_rate(rate: Any, name: str) -> int:
    """A sample rate read from a file: a whole number of Hz >= 1."""
    if not np.isfinite(rate) or int(rate) != rate or rate < 1:
        raise ValueError(f"{name}: sample_rate must be a whole number of Hz >= 1, got {rate}")
    return int(rate)


def _resample(wave: np.ndarray, rate: int, target: int | None, name: str) -> np.ndarray:
    _check_clip(wave, name)
    if target is None or rate == target:
        return wave
    import soxr

    out = soxr.resample(wave, rate, target)
    if not len(out):
        raise ValueError(f"{name}: empty after resampling from {rate} to {target} Hz")
    return out.astype(np.float32)


def _check_rates(rates: dict[str, int], target: int | None) -> int:
    """The common sample rate; different rates need resampling (a target rate)."""
    if target is not None:
        return target
    distinct = sorted(set(rates.values()))
    if len(distinct) > 1:
        example = next(n for n, r in rates.items() if r != distinct[0])
        raise ValueError(
            f"audio files have different sample rates {distinct} (e.g. {example}: {rates[example]} Hz); "
            "set a target sample rate to resample them"
        )
    return distinct[0]


def load_fsdd(
    path: str | Path,
    split: str = "train",
    labels: str = "digit",
    sample_rate: int | None = None,
    clip_seconds: float = 1.0,
    crop: str = "center",
) -> WaveformDataset:
    """The Free Spoken Digit Dataset from ``fsdd.npz`` (a file or a folder holding it).

    ``labels``: ``digit`` (10 classes) or ``speaker`` (6); ``split``: ``train`` (recordings 5-49)
    or ``test`` (0-4), the dataset's standard split.
    """
    path = Path(path)
    path = path / "fsdd.npz" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"FSDD: no file {path} (give fsdd.npz or the folder holding it)")
    if split not in ("train", "test"):
        raise ValueError(f"dataset 'fsdd' has no split '{split}'; choose from ['test', 'train']")
    if labels not in ("digit", "speaker"):
        raise ValueError(f"FSDD labels must be 'digit' or 'speaker', got {labels!r}")
    with np.load(path) as f:
        audio, offsets, rate = f["audio"], f["offsets"], _check_rate(f["sample_rate"], str(path))
        chosen = np.flatnonzero(f["is_test"] == (split == "test"))
        targets = f["labels"] if labels == "digit" else f["speaker_ids"]
        classes = [str(d) for d in range(10)] if labels == "digit" else [str(s) for s in f["speaker_names"]]
    clips = [
        torch.from_numpy(
            _resample(
                audio[offsets[k] : offsets[k + 1]].astype(np.float32) / 32768.0, rate, sample_rate, f"{path}[{k}]"
            )
        )
        for k in chosen
    ]
    rate = sample_rate or rate
    return WaveformDataset(clips, torch.as_tensor(targets[chosen]), rate, round(clip_seconds * rate), crop, classes)


def _read(path: Path) -> tuple[np.ndarray, int]:
    """A mono float32 waveform and its rate; unreadable or empty files are errors naming the file."""
    import soundfile

    try:
        wave, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, OSError, soundfile.LibsndfileError) as err:  # type: ignore[attr-defined]
        raise ValueError(f"unreadable audio file {path}: {err}") from None
    if not len(wave):
        raise ValueError(f"empty audio file {path} (0 samples)")
    return wave.mean(axis=1), int(rate)


def _labels_of(files: list[Path], folder: Path, labels: str) -> list[str]:
    """Label names per file: ``folder`` (the parent folder's name), a CSV path (``file,label``) or a regex with a ``label`` group."""
    if labels == "folder":
        return [f.parent.name for f in files]
    if labels.endswith(".csv"):
        with open(labels, newline="") as fh:
            table = {row["file"]: row["label"] for row in csv.DictReader(fh)}
        missing = [
            str(f.relative_to(folder)) for f in files if str(f.relative_to(folder)) not in table and f.name not in table
        ]
        if missing:
            raise ValueError(f"label CSV {labels} has no row for {len(missing)} files, e.g. {missing[0]}")
        return [table.get(str(f.relative_to(folder)), table.get(f.name, "")) for f in files]
    pattern = re.compile(labels)
    if "label" not in pattern.groupindex:
        raise ValueError(f"label pattern {labels!r} needs a named group (?P<label>...)")
    out = []
    for f in files:
        m = pattern.search(f.name)
        if m is None:
            raise ValueError(f"label pattern {labels!r} does not match the file name {f.name}")
        out.append(m.group("label"))
    return out


def load_audio_folder(
    root: str | Path,
    split: str = "train",
    labels: str = "folder",
    sample_rate: int | None = None,
    clip_seconds: float = 1.0,
    crop: str = "center",
) -> WaveformDataset:
    """A folder of ``.wav`` / ``.flac`` files (``root/split/`` if it exists, else ``root`` as the train split)."""
    root = Path(root)
    folder = root / split if (root / split).is_dir() else root
    if folder is root and split != "train":
        raise ValueError(f"audio folder {root} has no '{split}' folder, so it is the train split only")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    if not files:
        raise FileNotFoundError(f"audio folder {folder} holds no {'/'.join(AUDIO_EXTENSIONS)} files")
    names = _labels_of(files, folder, labels)
    classes = sorted(set(names))
    waves = {str(f): _read(f) for f in files}
    rate = _check_rates({n: r for n, (_, r) in waves.items()}, sample_rate)
    clips = [torch.from_numpy(_resample(w, r, sample_rate, n)) for n, (w, r) in waves.items()]
    targets = torch.tensor([classes.index(n) for n in names])
    return WaveformDataset(clips, targets, rate, round(clip_seconds * rate), crop, classes)


def load_audio_npz(
    path: str | Path, sample_rate: int | None = None, clip_seconds: float = 1.0, crop: str = "center"
) -> WaveformDataset:
    """A generic audio ``.npz``: ``audio`` (N, L), or ragged ``audio`` + ``offsets`` (N + 1,); ``labels``; ``sample_rate``."""
    with np.load(path) as f:
        missing = [k for k in ("audio", "labels", "sample_rate") if k not in f]
        if missing:
            raise ValueError(f"audio npz {path} lacks the arrays {missing} (it has {sorted(f.files)})")
        audio, labels, rate = (
            f["audio"],
            f["labels"],
            _check_rate(f["sample_rate"].item() if f["sample_rate"].size == 1 else -1, f"audio npz {path}"),
        )
        offsets = f["offsets"] if "offsets" in f else None
    scale = 32768.0 if audio.dtype == np.int16 else 1.0
    if offsets is None:
        if audio.ndim != 2:
            raise ValueError(
                f"audio npz {path}: 'audio' must be (N, L), or 1-D with 'offsets'; got shape {audio.shape}"
            )
        raw = [audio[k] for k in range(len(audio))]
    else:
        raw = [audio[offsets[k] : offsets[k + 1]] for k in range(len(offsets) - 1)]
    empty = [k for k, w in enumerate(raw) if not len(w)]
    if empty:
        raise ValueError(f"audio npz {path}: clip {empty[0]} is empty ({len(empty)} empty clips)")
    clips = [
        torch.from_numpy(_resample(w.astype(np.float32) / scale, rate, sample_rate, f"audio npz {path}, clip {k}"))
        for k, w in enumerate(raw)
    ]
    rate = sample_rate or rate
    return WaveformDataset(clips, torch.as_tensor(labels), rate, round(clip_seconds * rate), crop)
