"""Log-mel spectrogram front end: waveforms (B, 1, L) -> (B, 1, n_mels, frames), on the batch's device.

The mel filterbank is librosa's default (Slaney mel scale, Slaney area normalisation), the STFT
is centred with zero padding and a periodic Hann window, and the power spectrogram is mapped to
``log(mel + eps)``; ``tests/audio/test_audio.py`` checks it against ``librosa.feature.melspectrogram``.
A saved encoder carries these settings (``ResNet(frontend=...)``), so it always sees the audio the
way it was trained.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

__all__ = ["LogMel", "default_frontend", "mel_filterbank"]


def default_frontend(sample_rate: int) -> dict[str, Any]:
    """Front-end settings for a sample rate: a ~32 ms window (power of two), a 10 ms hop, 64 mel bands."""
    if sample_rate < 1000:
        raise ValueError(f"sample rate must be >= 1000 Hz, got {sample_rate}")
    n_fft = 2 ** round(math.log2(0.032 * sample_rate))
    return {
        "sample_rate": int(sample_rate),
        "n_fft": n_fft,
        "hop_length": sample_rate // 100,
        "n_mels": 64,
        "f_min": 0.0,
        "f_max": sample_rate / 2,
    }


def _hz_to_mel(f: torch.Tensor) -> torch.Tensor:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
    lin = f / f_sp
    return torch.where(f >= min_log_hz, min_log_hz / f_sp + torch.log(f.clamp(min=1e-10) / min_log_hz) / logstep, lin)


def _mel_to_hz(m: torch.Tensor) -> torch.Tensor:
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return torch.where(m >= min_log_mel, min_log_hz * torch.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None
) -> torch.Tensor:
    """Triangular mel filters (n_mels, n_fft // 2 + 1), Slaney-normalised (each filter's area is constant)."""
    f_max = sample_rate / 2 if f_max is None else f_max
    fft_freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    mel_pts = torch.linspace(
        float(_hz_to_mel(torch.tensor(f_min, dtype=torch.float64))),
        float(_hz_to_mel(torch.tensor(f_max, dtype=torch.float64))),
        n_mels + 2,
        dtype=torch.float64,
    )
    hz = _mel_to_hz(mel_pts)
    widths = hz.diff()
    ramps = hz[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = torch.clamp(torch.minimum(lower, upper), min=0)
    return (weights * (2.0 / (hz[2:] - hz[:-2]))[:, None]).float()


class LogMel(nn.Module):
    """Log-mel spectrogram of waveforms (B, 1, L) or (B, L): returns (B, 1, n_mels, 1 + L // hop_length)."""

    def __init__(
        self,
        sample_rate: int,
        n_fft: int,
        hop_length: int,
        n_mels: int,
        f_min: float = 0.0,
        f_max: float | None = None,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if n_fft < 16 or hop_length < 1 or n_mels < 1 or not 0 <= f_min < (f_max or sample_rate / 2) <= sample_rate / 2:
            raise ValueError(
                f"invalid log-mel settings: sample_rate {sample_rate}, n_fft {n_fft}, hop {hop_length}, "
                f"n_mels {n_mels}, f_min {f_min}, f_max {f_max}"
            )
        self.settings = {
            "sample_rate": int(sample_rate),
            "n_fft": int(n_fft),
            "hop_length": int(hop_length),
            "n_mels": int(n_mels),
            "f_min": float(f_min),
            "f_max": float(f_max or sample_rate / 2),
        }
        self.eps = eps
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.register_buffer("fbank", mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3 and x.shape[1] == 1:
            x = x[:, 0]
        if x.ndim != 2:
            raise ValueError(f"the log-mel front end takes waveforms (B, 1, L) or (B, L), got {tuple(x.shape)}")
        s = self.settings
        spec = (
            torch.stft(
                x.float(),
                s["n_fft"],
                s["hop_length"],
                window=self.window,
                center=True,
                pad_mode="constant",
                return_complex=True,
            )
            .abs()
            .pow(2)
        )
        mel = torch.matmul(self.fbank, spec)
        return torch.log(mel + self.eps).unsqueeze(1).to(x.dtype)
