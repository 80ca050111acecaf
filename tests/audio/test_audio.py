"""Audio: the seven CLAR ops and their engine, the log-mel front end, the readers, and the audio path end to end."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from amortinv import InvarianceSpace
from amortinv.augment import audio_ops as A
from amortinv.augment.audio import AudioAugment
from amortinv.data import build_dataset
from amortinv.encoders import build_encoder, load_encoder, save_encoder
from amortinv.encoders.frontend import LogMel, default_frontend, mel_filterbank

A7 = InvarianceSpace.from_name("audio7")
SR = 8000
FSDD = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd" / "fsdd.npz"


def tones(freqs, n: int = 4000, amp: float = 0.5) -> torch.Tensor:
    """Sine tones (B, 1, n) at 8 kHz, with a short silence at both ends."""
    t = torch.arange(n) / SR
    x = torch.stack([amp * torch.sin(2 * math.pi * f * t) for f in freqs])
    x[:, : n // 10] = 0
    x[:, -n // 10 :] = 0
    return x[:, None]


def peak_hz(x: torch.Tensor) -> torch.Tensor:
    n = x.shape[-1]
    return torch.fft.rfft(x[:, 0] * torch.hann_window(n)).abs().argmax(-1) * SR / n


def one_hot(*names: str) -> torch.Tensor:
    return torch.tensor([1.0 if f in names else 0.0 for f in A7.factors])


@pytest.mark.parametrize(
    "op,identity,other",
    [
        (
            "fade",
            (torch.zeros(2), torch.zeros(2), torch.tensor([0, 2])),
            (torch.full((2,), 0.4), torch.full((2,), 0.3), torch.tensor([0, 2])),
        ),
        (
            "add_noise",
            (torch.full((2,), float("inf")), torch.randn(2, 4000)),
            (torch.full((2,), 10.0), torch.randn(2, 4000)),
        ),
        ("time_mask", (torch.full((2,), 0.4), torch.zeros(2)), (torch.full((2,), 0.4), torch.full((2,), 0.1))),
        ("time_shift", (torch.zeros(2),), (torch.full((2,), 0.25),)),
        ("time_stretch", (torch.ones(2),), (torch.tensor([0.7, 1.3]),)),
        ("pitch_shift", (torch.zeros(2),), (torch.tensor([4.0, -4.0]),)),
    ],
)
def test_each_op_is_the_identity_at_its_identity_parameter_and_changes_the_clip_otherwise(op, identity, other):
    x = tones([440, 1000])[:, 0]
    same, changed = getattr(A, op)(x, *identity), getattr(A, op)(x, *other)
    assert same.shape == changed.shape == x.shape
    assert (same - x).abs().max() < 1e-3, f"{op} at its identity parameter changed the clip"
    assert (changed - x).abs().max() > 0.05, f"{op} left the clip unchanged"


def test_views_have_fixed_length_and_per_sample_parameters():
    torch.manual_seed(0)
    aug = AudioAugment(A7, 4000)
    x = tones([440] * 8, n=3000)  # shorter input: centred in the window
    for d in A7.training_descriptors()[::17]:
        v1, v2 = aug(x, d)
        assert v1.shape == v2.shape == (8, 1, 4000) and torch.isfinite(v1).all()
        assert not torch.allclose(v1, v2)
        distinct = {tuple(r.round(decimals=3).tolist()[:200:7]) for r in v1[:, 0]}
        assert len(distinct) > 4, f"samples share their random parameters for {d.tolist()}"
    torch.manual_seed(3)
    a = aug(x, A7.training_descriptors()[5])
    torch.manual_seed(3)
    b = aug(x, A7.training_descriptors()[5])
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_a_factor_that_is_off_leaves_its_property_untouched():
    torch.manual_seed(0)
    aug = AudioAugment(A7, 4000)
    x = tones([500.0] * 16)
    all_but_pitch = one_hot(*[f for f in A7.factors if f not in ("pitch_shift", "noise")])
    v, _ = aug(x, all_but_pitch)
    assert (peak_hz(v) - 500).abs().max() <= 4, "pitch moved although pitch_shift is off"
    v, _ = aug(x, one_hot("pitch_shift", "fade_in"))
    assert ((peak_hz(v) - 500).abs() > 20).float().mean() > 0.7, "pitch_shift on should move the pitch"
    burst = torch.zeros(16, 1, 4000)
    burst[:, 0, 1000:1400] = torch.sin(torch.arange(400) * 0.7)

    def centre(v: torch.Tensor) -> torch.Tensor:  # energy centroid of each view, in samples
        e = v[:, 0].pow(2)
        return (e * torch.arange(4000)).sum(1) / e.sum(1)

    # no time op: the burst stays where it was, up to the phase vocoder's smear (pitch shift): under 3/4 of its window
    window = 0.75 * aug.recipe.n_fft
    v, _ = aug(burst, one_hot("pitch_shift", "fade_in", "fade_out"))
    assert (centre(v) - 1200).abs().max() < window, "the burst moved although every time factor is off"
    v, _ = aug(burst, one_hot("time_shift", "fade_in"))
    assert ((centre(v) - 1200).abs() > window).float().mean() > 0.5, "time_shift on should move it"


def test_log_mel_matches_librosa():
    librosa = pytest.importorskip("librosa")
    s = default_frontend(SR)
    assert (s["n_fft"], s["hop_length"], s["n_mels"]) == (256, 80, 64) and default_frontend(16000)["n_fft"] == 512
    ref_fb = librosa.filters.mel(sr=SR, n_fft=s["n_fft"], n_mels=s["n_mels"])
    np.testing.assert_allclose(mel_filterbank(SR, s["n_fft"], s["n_mels"]).numpy(), ref_fb, atol=1e-7)
    y = np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.1
    ref = librosa.feature.melspectrogram(
        y=y,
        sr=SR,
        n_fft=s["n_fft"],
        hop_length=s["hop_length"],
        n_mels=s["n_mels"],
        power=2.0,
        center=True,
        pad_mode="constant",
    )
    ours = LogMel(**s)(torch.from_numpy(y)[None, None])[0, 0].exp().numpy() - 1e-6
    assert ours.shape == ref.shape == (64, 101)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-6 * ref.max())


def test_audio_encoder_carries_its_front_end(tmp_path):
    enc = build_encoder("hyper_resnet18", 7, width=0.125, in_channels=1, frontend=default_frontend(SR)).eval()
    assert enc.modality == "audio" and build_encoder("resnet18", width=0.125).modality == "vision"
    x, i = tones([300, 700]), torch.rand(7)
    save_encoder(tmp_path / "enc", enc)
    back = load_encoder(tmp_path / "enc")
    assert back.config["frontend"] == default_frontend(SR)
    torch.testing.assert_close(back(x, i), enc(x, i))
    plain = enc.materialise(i).eval()
    assert plain.modality == "audio" and not plain.conditioned
    torch.testing.assert_close(plain(x), enc(x, i), atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="in_channels must be 1"):
        build_encoder("resnet18", frontend=default_frontend(SR))
    with pytest.raises(ValueError, match=r"\(B, 1, L\)"):
        enc(torch.zeros(2, 2, 3, 400), i)


@pytest.mark.skipif(not FSDD.is_file(), reason="the shared FSDD file is not beside this checkout")
def test_fsdd_counts_labels_and_split():
    train = build_dataset("fsdd", FSDD.parent, "train")
    test = build_dataset("fsdd", FSDD.parent, "test")
    speakers = build_dataset("fsdd_speaker", FSDD.parent, "test")
    assert len(train) + len(test) == 3000 and len(test) == 300
    assert train.targets.bincount().tolist() == [270] * 10 and test.targets.bincount().tolist() == [30] * 10
    assert speakers.targets.bincount().tolist() == [50] * 6 and len(speakers.classes) == 6
    x, y = test[0]
    assert x.shape == (1, 8000) and x.dtype == torch.float32 and x.abs().max() <= 1 and train.sample_rate == 8000


def write_wav(path: Path, wave: np.ndarray, rate: int) -> None:
    import soundfile

    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), wave, rate)


def test_audio_folder_labels_resampling_and_clear_errors(tmp_path):
    t = np.arange(4000) / SR
    for k, (label, f) in enumerate([("low", 200), ("low", 220), ("high", 900), ("high", 950)]):
        write_wav(tmp_path / "train" / label / f"{label}_{k}.wav", 0.3 * np.sin(2 * np.pi * f * t), SR)
    ds = build_dataset("audiofolder", tmp_path, "train", clip_seconds=0.25)
    assert len(ds) == 4 and ds.classes == ["high", "low"] and ds[0][0].shape == (1, 2000)
    by_pattern = build_dataset("audiofolder", tmp_path, "train", labels=r"(?P<label>[a-z]+)_\d")
    assert by_pattern.targets.tolist() == ds.targets.tolist()
    (tmp_path / "labels.csv").write_text(
        "file,label\n"
        + "".join(f"{p.name},{'x' if 'low' in p.name else 'y'}\n" for p in sorted((tmp_path / "train").rglob("*.wav")))
    )
    assert sorted(build_dataset("audiofolder", tmp_path, "train", labels=str(tmp_path / "labels.csv")).classes) == [
        "x",
        "y",
    ]
    write_wav(tmp_path / "train" / "low" / "fast.wav", 0.3 * np.sin(2 * np.pi * 200 * np.arange(8000) / 16000), 16000)
    with pytest.raises(ValueError, match="different sample rates"):
        build_dataset("audiofolder", tmp_path, "train")
    resampled = build_dataset("audiofolder", tmp_path, "train", sample_rate=SR)
    assert resampled.sample_rate == SR and len(resampled.clips[[len(c) for c in resampled.clips].index(4000)]) == 4000
    (tmp_path / "train" / "low" / "broken.wav").write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(ValueError, match="unreadable audio file .*broken.wav"):
        build_dataset("audiofolder", tmp_path, "train", sample_rate=SR)
    (tmp_path / "train" / "low" / "broken.wav").unlink()
    write_wav(tmp_path / "train" / "low" / "empty.wav", np.zeros(0), SR)
    with pytest.raises(ValueError, match="empty audio file .*empty.wav"):
        build_dataset("audiofolder", tmp_path, "train", sample_rate=SR)
    with pytest.raises(ValueError, match="has no 'test' folder"):
        build_dataset("audiofolder", tmp_path / "train", "test")
    with pytest.raises(ValueError, match="image-size does not apply"):
        build_dataset("audiofolder", tmp_path, "train", image_size=32)
    with pytest.raises(ValueError, match="holds images: audio settings"):
        build_dataset("shapes", None, "train", clip_seconds=2.0)


def make_audio_npz(folder: Path, n: int = 48, seed: int = 0) -> Path:
    """Two classes of tones (low / high), int16 ragged clips with offsets, train.npz + test.npz."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        labels = np.arange(n) % 2
        clips = [
            (
                0.4
                * np.sin(
                    2
                    * np.pi
                    * (250 if y == 0 else 1200)
                    * rng.uniform(0.9, 1.1)
                    * np.arange(int(rng.integers(1500, 2500)))
                    / SR
                )
                * 32767
            ).astype(np.int16)
            for y in labels
        ]
        offsets = np.concatenate([[0], np.cumsum([len(c) for c in clips])])
        np.savez(folder / f"{split}.npz", audio=np.concatenate(clips), offsets=offsets, labels=labels, sample_rate=SR)
    return folder


def test_generic_audio_npz(tmp_path):
    root = make_audio_npz(tmp_path / "npz", n=10)
    ds = build_dataset("audionpz", root, "test", clip_seconds=0.25)
    assert len(ds) == 10 and ds[3][0].shape == (1, 2000)
    np.savez(
        tmp_path / "bad.npz",
        audio=np.zeros(5, np.int16),
        offsets=np.array([0, 5, 5]),
        labels=np.array([0, 1]),
        sample_rate=SR,
    )
    with pytest.raises(ValueError, match="clip 1 is empty"):
        build_dataset("audionpz", tmp_path / "bad.npz", "train")
    with pytest.raises(ValueError, match="no 'test' split"):
        build_dataset("audionpz", tmp_path / "bad.npz", "test")


def test_audio_pretrain_transfer_and_fewshot_end_to_end(tmp_path):
    from amortinv.cli import main

    root = make_audio_npz(tmp_path / "tones")
    common = ["--data", "audionpz", "--data-root", str(root), "--clip-seconds", "0.25"]
    main(
        [
            "pretrain",
            *common,
            "--space",
            "audio7",
            "--batch-size",
            "16",
            "--epochs",
            "1",
            "--max-steps",
            "2",
            "--encoder-options",
            "{width: 0.125}",
            "--out",
            str(tmp_path / "pre"),
            "--progress",
            "false",
        ]
    )
    result = json.loads((tmp_path / "pre" / "result.json").read_text())
    assert (
        result["steps"] == 2
        and json.loads((tmp_path / "pre" / "encoder.json").read_text())["encoder"]["frontend"]["sample_rate"] == SR
    )
    main(
        [
            "transfer",
            "--encoder",
            str(tmp_path / "pre"),
            "--data",
            "audionpz",
            "--data-root",
            str(root),
            "--task",
            "classification",
            "--i-steps",
            "2",
            "--baselines",
            "",
            "--out",
            str(tmp_path / "tr"),
            "--device",
            "cpu",
        ]
    )
    tr = json.loads((tmp_path / "tr" / "result.json").read_text())
    learned = tr["tasks"]["audionpz:classification"]["methods"]["ai_forward"]
    assert list(learned["i"]) == list(A7.factors) and 0 <= learned["test"]["top1"] <= 1
    main(
        [
            "fewshot",
            "--encoder",
            str(tmp_path / "pre"),
            "--data",
            "audionpz",
            "--data-root",
            str(root),
            "--ways",
            "2",
            "--shots",
            "1",
            "--queries",
            "3",
            "--episodes",
            "3",
            "--steps",
            "1",
            "--out",
            str(tmp_path / "fs"),
            "--device",
            "cpu",
        ]
    )
    fs = json.loads((tmp_path / "fs" / "result.json").read_text())
    assert fs["kind"] == "classification" and fs["results"] and fs["space"]["name"] == "audio7"


def test_audio_measure_and_preview(tmp_path):
    from amortinv.cli import main

    root = make_audio_npz(tmp_path / "tones", n=12)
    enc = build_encoder("hyper_resnet18", 7, width=0.125, in_channels=1, frontend=default_frontend(SR))
    save_encoder(tmp_path / "enc", enc, metadata={"space": A7.to_config()})
    main(
        [
            "measure",
            "--encoder",
            str(tmp_path / "enc"),
            "--data",
            "audionpz",
            "--data-root",
            str(root),
            "--split",
            "test",
            "--num-images",
            "4",
            "--reference-images",
            "6",
            "--descriptors",
            "1,1,1,1,1,1,1;0,1,1,1,1,1,1",
            "--transforms",
            "frequency",
            "--out",
            str(tmp_path / "m"),
            "--device",
            "cpu",
        ]
    )
    table = json.loads((tmp_path / "m" / "invariance.json").read_text())
    for res in table["results"].values():
        assert list(res["transforms"]) == ["pitch_shift", "fade_in", "fade_out", "noise"]
        assert all(-1 <= r["cosine"] <= 1 for r in res["transforms"].values())
    with pytest.raises(SystemExit):
        main(
            [
                "measure",
                "--encoder",
                str(tmp_path / "enc"),
                "--data",
                "audionpz",
                "--data-root",
                str(root),
                "--transforms",
                "hue",
                "--out",
                str(tmp_path / "m2"),
            ]
        )
    main(
        [
            "preview",
            "--space",
            "audio7",
            "--data",
            "audionpz",
            "--data-root",
            str(root),
            "--num-images",
            "2",
            "--out",
            str(tmp_path / "p.png"),
            "--wavs",
            "true",
        ]
    )
    assert (tmp_path / "p.png").stat().st_size > 10_000
    assert len(list((tmp_path / "p_wavs").glob("*.wav"))) == 9 * 2 * 2  # original + 8 descriptors, 2 clips, 2 views
