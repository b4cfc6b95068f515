"""The default sync model: canonical shapes, the TensorFlow network, checkpoints, personalization."""
from __future__ import annotations

import logging
import os
import subprocess

import numpy as np
import pytest

from conftest import ROOT, ffmpeg, speechlike
from lipsync.generators import checkpoint as ckpt_lib
from lipsync.generators import features
from lipsync.generators import geometry as shape
from lipsync.errors import InputError, MissingBackendError


@pytest.fixture(scope="module")
def astro_points():
    from conftest import astronaut_face
    from lipsync.face.track import FaceTracker, TrackSettings

    return FaceTracker(TrackSettings())(astronaut_face(256))


def test_canonical_mouth_ignores_position_roll_and_size(astro_points):
    angle = np.deg2rad(12)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = (astro_points @ rot.T) * 1.7 + [40, -25]
    np.testing.assert_allclose(shape.to_canonical(moved), shape.to_canonical(astro_points), atol=1e-4)
    back = shape.from_canonical(shape.to_canonical(astro_points), moved)
    np.testing.assert_allclose(back, moved[shape.MOUTH], atol=1e-3)


def _features(wav):
    from lipsync.io import audio

    return features.feature_windows(features.normalise_mel(audio.melspectrogram(wav)), 25, 50, 24)


def test_features_are_level_normalised_and_silence_is_zero():
    from lipsync.io import audio

    wav = speechlike(2.0)
    loud = _features(wav)
    quiet = _features(wav * 0.5)
    assert loud.shape == (50, 24, 80)
    assert np.abs(loud - quiet).mean() < 0.3 * np.abs(loud).mean()  # 6 dB quieter reads much the same
    assert not _features(np.zeros(32000, np.float32)).any()
    assert not features.normalise_mel(audio.melspectrogram(np.zeros(16000, np.float32))).any()


def test_network_shapes_and_a_tiny_training_run_lowers_the_loss():
    from lipsync.generators.sync_model import ModelDimensions, SyncModel, TrainConfig, Trainer

    dims = ModelDimensions(channels=16, hidden=16)
    model = SyncModel(dims)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (128, dims.window_steps, dims.n_mels)).astype(np.float32)
    level = x[:, dims.window_steps // 2].mean(1)
    y = np.zeros((128, 20, 2), np.float32)
    y[:, 17, 1] = 0.3 * level  # the lower lip drops with the loudness
    assert model.predict(x[:5]).shape == (5, 20, 2)
    losses = list(Trainer(model, TrainConfig(seed=1)).run(x, y, 150))
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:5])


def test_checkpoint_round_trip_and_version_errors(tmp_path):
    from lipsync.generators.sync_model import ModelDimensions, SyncModel

    dims = ModelDimensions(channels=8, hidden=8)
    models = [SyncModel(dims), SyncModel(dims)]
    path = str(tmp_path / "m.npz")
    ckpt_lib.save(path, ckpt_lib.from_models(dims, models, {"note": "test"}))
    loaded_dims, loaded = ckpt_lib.build_models(ckpt_lib.load(path), path)
    assert loaded_dims == dims and len(loaded) == 2
    x = np.random.default_rng(0).uniform(0, 1, (3, dims.window_steps, dims.n_mels)).astype(np.float32)
    np.testing.assert_allclose(loaded[1].predict(x), models[1].predict(x), atol=1e-6)

    data = dict(np.load(path))
    data["meta"] = np.array(str(data["meta"]).replace("lipsync-sync-model/1", "lipsync-sync-model/0"))
    old = str(tmp_path / "old.npz")
    np.savez(old, **data)
    with pytest.raises(InputError, match=r"old.npz: checkpoint format .* \(made by a different version"):
        ckpt_lib.load(old)
    ck = ckpt_lib.load(path)
    ck.dims["channels_renamed"] = ck.dims.pop("channels")
    with pytest.raises(InputError, match="do not match this version"):
        ckpt_lib.build_models(ck, path)
    (tmp_path / "junk.npz").write_text("not a checkpoint")
    with pytest.raises(InputError, match="junk.npz: not a lipsync sync-model checkpoint"):
        ckpt_lib.load(str(tmp_path / "junk.npz"))
    with pytest.raises(MissingBackendError, match="nothing.npz: sync model checkpoint not found"):
        ckpt_lib.load(str(tmp_path / "nothing.npz"))


def test_shipped_checkpoint_loads_and_opens_the_mouth_for_speech_only():
    from lipsync.generators import sync

    path = ckpt_lib.default_checkpoint()
    assert os.path.getsize(path) < 50e6
    dims, models, _ = sync.load_models(path)
    rest = np.zeros((20, 2), np.float32)
    person = sync.Person(rest, models)
    wav = speechlike(3.0)  # syllables for 2.4 s, then silence
    mouths = sync.plan_mouths(person, wav, 25.0, 75)
    from lipsync.generators.sync_model import opening_of

    opening = opening_of(mouths)
    assert opening[:60].max() > opening[65:].max() + 0.05  # opens while speaking
    silent = opening_of(sync.plan_mouths(person, np.zeros(48000, np.float32), 25.0, 75))
    assert np.ptp(silent) < 1e-3
    tail = opening[63:]  # after the last syllable the mouth settles to rest without flicker
    assert np.all(np.diff(tail) <= 0.005)  # half a pixel on a face with 100 px between the eyes
    assert tail[-1] - silent[0] < 0.3 * (opening[:60].max() - silent[0])


def test_planning_in_blocks_equals_planning_at_once(monkeypatch):
    from lipsync.generators import sync

    _, models, _ = sync.load_models()
    person = sync.Person(np.zeros((20, 2), np.float32), models, offset=3)
    wav = speechlike(4.0, seed=3)
    at_once = sync.plan_mouths(person, wav, 25.0, 100)
    monkeypatch.setattr(sync, "PREDICT_BLOCK", 7)  # block edges inside syllables, and a short last block
    # equal up to float rounding: TensorFlow's CPU kernels may sum in another order for another batch size
    np.testing.assert_allclose(sync.plan_mouths(person, wav, 25.0, 100), at_once, rtol=0, atol=1e-6)


def test_target_landmarks_reach_the_planned_mouth(astro_points):
    from lipsync.generators import sync
    from lipsync.face.landmarks import mouth_opening

    rest = shape.to_canonical(astro_points)
    wanted = rest.copy()
    wanted[[17, 18, 19], 1] += 0.12  # lower inner lip (landmarks 65-67) down
    dst = sync.target_landmarks(astro_points, wanted, rest)
    assert mouth_opening(dst) == pytest.approx(mouth_opening(astro_points) + 0.12, abs=0.01)
    np.testing.assert_array_equal(dst[:17][:3], astro_points[:3])  # the upper jaw stays


@pytest.fixture
def talking_video(tmp_path, media):
    """The generated face video with a speech-like sound track of its own."""
    from conftest import write_wav

    wav = write_wav(str(tmp_path / "own.wav"), speechlike(2.0, seed=3), 16000)
    out = str(tmp_path / "talking.mp4")
    subprocess.run([ffmpeg(), "-loglevel", "error", "-y", "-i", media["video"], "-i", wav, "-c:v", "copy",
                    "-c:a", "aac", "-shortest", out], check=True)
    return out


def test_personal_model_is_trained_once_then_reused(tmp_path, media, talking_video, cache_dir, monkeypatch, caplog):
    from lipsync.generators import sync
    from lipsync.pipeline import lip_sync

    calls = []
    real = sync.personalize

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(sync, "personalize", counting)
    for k in range(2):
        with caplog.at_level(logging.DEBUG, logger="lipsync"):
            lip_sync(video_path=talking_video, audio_path=media["short_wav"], outfile=str(tmp_path / f"o{k}.mp4"),
                     quiet=True)
    assert len(calls) == 1
    assert any("personal model from cache" in r.getMessage() for r in caplog.records)
    assert len(os.listdir(cache_dir / "personal")) == 1


def test_personalize_on_without_own_speech_is_a_clear_error(tmp_path, media, cache_dir):
    from lipsync.pipeline import lip_sync

    with pytest.raises(InputError, match="face.mp4: cannot personalize: the video has no sound track"):
        lip_sync(video_path=media["video"], audio_path=media["short_wav"], outfile=str(tmp_path / "o.mp4"),
                 personalize="on", quiet=True)
    assert not os.path.exists(tmp_path / "o.mp4")


def test_training_writes_log_and_samples_and_resumes(tmp_path, talking_video, cache_dir):
    from lipsync.generators import train

    out = str(tmp_path / "m.npz")
    train.train(data=[talking_video], out=out, steps=30, members=1, quiet=True)
    assert ckpt_lib.load(out).optimiser[0]["step"] == 30
    assert os.path.getsize(str(tmp_path / "m_samples.png")) > 1000
    train.train(data=[talking_video], out=out, steps=60, members=1, resume=True, quiet=True)
    ck = ckpt_lib.load(out)
    assert ck.optimiser[0]["step"] == 60 and ck.info["frames"] == 50
    rows = open(str(tmp_path / "m.log.csv")).read().split()
    assert rows[0] == "member,step,loss" and [r.split(",")[1] for r in rows[1:]] == ["25", "50"]


def test_train_script_without_videos_is_a_clear_error(tmp_path):
    proc = subprocess.run([os.environ.get("PYTHON", __import__("sys").executable), "-c", "import sys; from lipsync.cli import train_main; sys.exit(train_main())", "--data",
                           str(tmp_path / "none"), "--out", str(tmp_path / "m.npz")], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == f"error: {tmp_path / 'none'}: no such file or folder"
    assert not os.path.exists(tmp_path / "m.npz")
