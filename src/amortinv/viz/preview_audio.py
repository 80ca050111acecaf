"""Audio augmentation preview: log-mel spectrograms of the two views a sample of descriptors makes (a PNG).

Optionally writes the views as WAV files (``wav_dir``) to listen to them.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from amortinv.encoders.frontend import LogMel, default_frontend  # noqa: E402
from amortinv.viz.figure import save_figure  # noqa: E402

__all__ = ["audio_preview_grid", "preview_descriptors"]


def preview_descriptors(space, count: int = 8) -> torch.Tensor:  # noqa: ANN001
    """All ones plus an evenly spaced sample of the other training descriptors (count rows at most)."""
    train = space.training_descriptors()
    ones = (train == 1).all(dim=1)
    rest = train[~ones]
    pick = (
        torch.linspace(0, len(rest) - 1, min(count - 1, len(rest))).round().long()
        if len(rest)
        else torch.zeros(0, dtype=torch.long)
    )
    return torch.cat([train[ones], rest[pick]])


def audio_preview_grid(
    waves: torch.Tensor,
    augment: torch.nn.Module,
    sample_rate: int,
    out: Path,
    title: str = "",
    rows: int = 8,
    wav_dir: Path | None = None,
) -> Path:
    """Write a PNG: the original clips, then one row per descriptor with view 1 and view 2 of each clip.

    Args:
        waves: waveforms (N, 1, L).
        augment: the audio engine (``AudioAugment``); its space gives the descriptors.
        sample_rate: of ``waves`` (for the spectrograms and WAVs).
        rows: descriptors shown (all ones first).
        wav_dir: if given, every view is also written there as ``row<r>_clip<c>_view<v>.wav``.
    Returns:
        ``out``.
    """
    mel = LogMel(**default_frontend(sample_rate))
    base = augment.eval_input(waves)
    lines = [("original", [base, base])]
    for d in preview_descriptors(augment.space, rows):
        lines.append((augment.space.label(d), list(augment(waves, d))))
    n = len(waves)
    fig, axes = plt.subplots(len(lines), 2 * n, figsize=(min(16.0, 2.2 * 2 * n), 1.3 * len(lines) + 0.5), squeeze=False)
    for r, (label, views) in enumerate(lines):
        for v, view in enumerate(views):
            spec = mel(view)[:, 0]
            for c in range(n):
                ax = axes[r, 2 * c + v]
                ax.imshow(spec[c].numpy(), origin="lower", aspect="auto", cmap="magma")
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    ax.set_title(f"clip {c} view {v + 1}", fontsize=8)
                if wav_dir is not None:
                    _write_wav(wav_dir / f"row{r}_clip{c}_view{v + 1}.wav", view[c, 0], sample_rate)
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out, dpi=100)


def _write_wav(path: Path, wave: torch.Tensor, sample_rate: int) -> None:
    import soundfile

    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), wave.clamp(-1, 1).numpy(), sample_rate)
