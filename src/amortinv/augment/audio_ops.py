"""Batched waveform ops with per-sample parameters: the deterministic half of the audio engine.

Every op maps a float batch of waveforms ``x`` (B, L) and per-sample parameters (B,) to a batch
of the same shape (B, L): lengths never change (time stretch and pitch shift crop or zero-pad
back to L around the centre). Each is a few whole-batch tensor operations (the STFT for the phase
vocoder), so it runs on the batch's device. The identity parameter of each op returns the input
(to float precision for the two STFT-based ops).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "FADE_SHAPES",
    "fade",
    "add_noise",
    "time_mask",
    "time_shift",
    "phase_vocoder",
    "time_stretch",
    "pitch_shift",
    "resample_linear",
    "fit_length",
]

FADE_SHAPES = ("linear", "logarithmic", "exponential")


def _col(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(B,) parameters as (B, 1) on ``x``'s device and dtype."""
    return v.to(device=x.device, dtype=x.dtype, non_blocking=True).view(-1, 1)


def _shape_gain(r: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
    """Gain of a fade at progress r in [0, 1] for shape index 0 linear, 1 logarithmic, 2 exponential."""
    log = torch.log10(0.1 + r) + 1
    exp = torch.pow(2.0, (r - 1) * 5)
    gain = torch.where(shape == 1, log, torch.where(shape == 2, exp, r))
    return torch.where(r >= 1, torch.ones_like(r), gain.clamp(0, 1))


def fade(x: torch.Tensor, fade_in: torch.Tensor, fade_out: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
    """Fade in over the first ``fade_in`` and out over the last ``fade_out`` fractions (B,) of the clip.

    ``shape`` (B,) picks each sample's curve from ``FADE_SHAPES`` (torchaudio's ``Fade`` curves). A
    fraction of 0 leaves that end untouched.
    """
    n = x.shape[-1]
    t = torch.arange(n, device=x.device, dtype=x.dtype)[None, :]
    shape = shape.to(x.device, non_blocking=True).view(-1, 1)
    n_in, n_out = (_col(v, x) * n for v in (fade_in, fade_out))
    r_in = torch.where(n_in > 0, t / n_in.clamp(min=1e-9), torch.ones_like(t))
    r_out = torch.where(n_out > 0, (n - 1 - t) / n_out.clamp(min=1e-9), torch.ones_like(t))
    return x * _shape_gain(r_in.clamp(max=1), shape) * _shape_gain(r_out.clamp(max=1), shape)


def add_noise(x: torch.Tensor, snr_db: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Add ``noise`` (B, L) scaled to a signal-to-noise ratio of ``snr_db`` (B,) dB (inf: no noise)."""
    noise = noise.to(x.device, x.dtype, non_blocking=True)
    signal = x.pow(2).mean(dim=-1, keepdim=True)
    power = noise.pow(2).mean(dim=-1, keepdim=True).clamp(min=1e-12)
    scale = torch.sqrt(signal / power / torch.pow(10.0, _col(snr_db, x) / 10))
    return x + noise * scale


def time_mask(x: torch.Tensor, start: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """Zero the segment [start, start + width) given as fractions (B,) of the clip length."""
    n = x.shape[-1]
    t = torch.arange(n, device=x.device, dtype=x.dtype)[None, :] / n
    s, w = _col(start, x), _col(width, x)
    return x.masked_fill((t >= s) & (t < s + w), 0.0)


def time_shift(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Roll each clip by ``shift`` (B,) fractions of its length (positive: later), wrapping around."""
    n = x.shape[-1]
    steps = torch.round(shift.float().cpu() * n).long().to(x.device, non_blocking=True).view(-1, 1)
    idx = (torch.arange(n, device=x.device)[None, :] - steps) % n
    return x.gather(-1, idx)


def resample_linear(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Values of each clip (B, L) at fractional sample ``positions`` (B, M), linearly interpolated (0 outside)."""
    n = x.shape[-1]
    lo = positions.floor()
    frac = positions - lo
    lo = lo.long()
    inside = (lo >= 0) & (lo < n)
    padded = F.pad(x, (0, 1))
    a = padded.gather(-1, lo.clamp(0, n))
    b = padded.gather(-1, (lo + 1).clamp(0, n))
    return torch.where(inside, a + frac * (b - a), torch.zeros_like(a))


def fit_length(x: torch.Tensor, lengths: torch.Tensor, n: int) -> torch.Tensor:
    """Centre each clip's first ``lengths`` (B,) samples in a window of ``n``: crop or zero-pad (B, n)."""
    offset = ((lengths.to(x.device).float() - n) / 2).round().view(-1, 1)
    pos = torch.arange(n, device=x.device, dtype=x.dtype)[None, :] + offset
    valid = (pos >= 0) & (pos < lengths.to(x.device).view(-1, 1))
    out = x.gather(-1, pos.clamp(0, x.shape[-1] - 1).long())
    return torch.where(valid, out, torch.zeros_like(out))


def phase_vocoder(
    x: torch.Tensor, rate: torch.Tensor, n_fft: int = 512, hop: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Time-stretch each clip by ``rate`` (B,) (>1 faster/shorter) keeping its pitch.

    Batched phase vocoder: the STFT frames are read at per-sample fractional steps ``rate``,
    magnitudes interpolated, phases advanced by each bin's measured instantaneous frequency.
    Returns the stretched clips (B, M) (zero beyond each clip's own length) and those lengths (B,).
    """
    b, n = x.shape
    hop = hop or n_fft // 4
    window = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    spec = torch.stft(x, n_fft, hop, window=window, center=True, return_complex=True)  # (B, F, T)
    frames = spec.shape[-1]
    rate_d = rate.to(x.device, x.dtype, non_blocking=True).view(-1, 1)
    out_frames = int(math.ceil(frames / float(rate.min())))
    steps = torch.arange(out_frames, device=x.device, dtype=x.dtype)[None, :] * rate_d  # (B, T')
    lo = steps.floor().long().clamp(max=frames - 1)
    hi = (lo + 1).clamp(max=frames - 1)
    alpha = (steps - steps.floor())[:, None, :]
    gather = lambda v, i: v.gather(-1, i[:, None, :].expand(-1, v.shape[1], -1))  # noqa: E731
    mag, phase = spec.abs(), spec.angle()
    m = gather(mag, lo) * (1 - alpha) + gather(mag, hi) * alpha
    omega = torch.linspace(0, math.pi * hop, spec.shape[1], device=x.device, dtype=x.dtype)[None, :, None]
    dphi = gather(phase, hi) - gather(phase, lo) - omega
    dphi = dphi - 2 * math.pi * torch.round(dphi / (2 * math.pi)) + omega
    acc = torch.cat([phase[..., :1], phase[..., :1] + torch.cumsum(dphi[..., :-1], dim=-1)], dim=-1)
    valid = (steps < frames)[:, None, :]
    y = torch.istft(torch.polar(m * valid, acc), n_fft, hop, window=window, center=True, length=out_frames * hop)
    lengths = torch.round(n / rate_d[:, 0]).long().clamp(max=y.shape[-1])
    keep = torch.arange(y.shape[-1], device=x.device)[None, :] < lengths[:, None]
    return y * keep, lengths


def time_stretch(x: torch.Tensor, rate: torch.Tensor, n_fft: int = 512) -> torch.Tensor:
    """Phase-vocoder time stretch by ``rate`` (B,), then centre crop / zero-pad back to the clip length."""
    y, lengths = phase_vocoder(x, rate, n_fft)
    return fit_length(y, lengths, x.shape[-1])


def pitch_shift(x: torch.Tensor, semitones: torch.Tensor, n_fft: int = 512) -> torch.Tensor:
    """Shift pitch by ``semitones`` (B,) keeping duration: stretch by 2^(-s/12), then resample back (librosa's recipe)."""
    rate = torch.pow(2.0, -semitones.float().cpu() / 12)
    y, lengths = phase_vocoder(x, rate, n_fft)
    n = x.shape[-1]
    pos = torch.arange(n, device=x.device, dtype=x.dtype)[None, :] / rate.to(x.device, x.dtype).view(-1, 1)
    pos = pos.clamp(max=y.shape[-1] - 1)
    return resample_linear(y, pos) * (pos < lengths.to(x.device).view(-1, 1))
