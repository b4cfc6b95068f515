"""The default sync model: canonical shapes, the TensorFlow network, checkpoints, personalization."""
from __future__ import annotations

import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, ffmpeg, speechlike
from lipsync.generators import checkpoint as ckpt_lib
from lipsync.io import features
from lipsync.face import landmarks
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
    np.testing.assert_allclose(landmarks.to_canonical(moved), landmarks.to_canonical(astro_points), atol=1e-4)
    back = landmarks.from_canonical(landmarks.to_canonical(astro_points), moved)
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


def _tiny_model(lookahead=2, seed=0, cepstra=0, visemes=0):
    from lipsync.generators.sync_model import ModelDimensions, SyncModel

    return SyncModel(ModelDimensions(channels=16, dilations=(1, 2), lookahead=lookahead, cepstra=cepstra,
                                     visemes=visemes), seed=seed)


def test_network_shapes_and_a_tiny_training_run_lowers_the_loss():
    from lipsync.generators.sync_model import TrainConfig, Trainer

    model = _tiny_model()
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (8, 64, 80)).astype(np.float32)
    level = x.reshape(8, 32, 160).mean(2)  # per model step
    y = np.zeros((8, 32, 20, 2), np.float32)
    y[:, 2:, 17, 1] = 3 * level[:, :-2]  # the lower lip drops with the loudness two steps before
    mask = np.ones((8, 32), np.float32)
    assert model.predict_steps(x[0]).shape == (32, 20, 2)
    trainer = Trainer(model, TrainConfig(learning_rate=3e-3, seed=1))
    first = trainer.loss(x, y, mask)
    for _ in range(150):
        trainer.train_step(x, y, mask)
    assert trainer.loss(x, y, mask) < 0.5 * first and trainer.step == 150


def test_the_model_reads_no_sound_beyond_its_lookahead():
    rng = np.random.default_rng(1)
    for lookahead in (0, 3):
        model = _tiny_model(lookahead)
        x = rng.normal(0, 1, (80, 80)).astype(np.float32)
        changed = x.copy()
        changed[2 * 20:] += 1.0  # the sound changes from model step 20 on
        a, b = model.predict_steps(x), model.predict_steps(changed)
        np.testing.assert_array_equal(a[:20], b[:20])  # causal: outputs before step 20 are untouched
        assert np.abs(a[20] - b[20]).max() > 1e-4
        # output step j is the mouth at step j - lookahead: the mouth of time t hears t + lookahead steps
        times = np.array([(20 - lookahead - 1) / 40.0])
        mel = x.T
        changed_mel = changed.T
        from lipsync.generators.sync_model import SpeakerNorm

        norm = SpeakerNorm(np.zeros(80), np.ones(80))
        np.testing.assert_array_equal(model.mouths(mel, times, norm=norm), model.mouths(changed_mel, times, norm=norm))


def test_the_model_reads_cepstra_and_the_visemes_heard():
    from lipsync.generators import visemes
    from lipsync.generators.sync_model import dct_basis

    basis = dct_basis(80, 20)
    np.testing.assert_allclose(basis.T @ basis, np.eye(20), atol=1e-5)  # orthonormal
    model = _tiny_model(cepstra=20, visemes=visemes.N_VISEMES)
    mel = np.random.default_rng(3).normal(-1, 1, (80, 120)).astype(np.float32)
    track = visemes.viseme_track([("SIL", 0.0, 0.3), ("M", 0.3, 0.45), ("AA", 0.45, 0.9), ("ZZ", 0.9, 1.0)], 120)
    assert track.shape == (120, visemes.N_VISEMES) and np.all(track.sum(1) == 1)
    assert track[30, 1] == 1 and track[50, 4] == 1 and track[75, 0] == 1 and track[119, 0] == 1  # p/b/m, open, unknown
    times = np.arange(30) / 25  # 0 - 1.2 s
    with pytest.raises(ValueError, match="give their viseme track"):
        model.mouths(mel, times)
    other = track.copy()
    other[40:60] = visemes.viseme_track([("UW", 0.0, 1.0)], 20)  # "oo" instead of "aa" at 0.5-0.75 s
    assert np.abs(model.mouths(mel, times, track) - model.mouths(mel, times, other)).max() > 1e-4


def test_prediction_in_blocks_equals_prediction_at_once():
    model = _tiny_model()
    x = np.random.default_rng(2).normal(0, 1, (1000, 80)).astype(np.float32)
    np.testing.assert_allclose(model.predict_steps(x, block=37), model.predict_steps(x), rtol=0, atol=1e-5)


def test_streaming_normalisation_reaches_the_clip_statistics():
    from lipsync.generators.sync_model import SpeakerNorm
    from lipsync.training.train import running_normalise
    from lipsync.io import audio

    mel = audio.melspectrogram(speechlike(4.0, seed=2))
    prior_mean, prior_std = np.full(80, -1.0), np.full(80, 1.5)
    stream = SpeakerNorm(prior_mean, prior_std)
    for k in range(0, mel.shape[1], 37):
        stream.update(mel[:, k:k + 37])
    running = running_normalise(mel, prior_mean, prior_std)
    np.testing.assert_allclose(running[-1], stream(mel[:, -1:])[0], atol=1e-4)  # the stream's latest step
    offline = SpeakerNorm.fit(mel, prior_mean, prior_std)(mel)
    assert abs(float(offline.mean())) < 0.15 and 0.5 < float(offline[mel.mean(0) > -3.5].std()) < 1.5
    voiced = mel[:, mel.mean(0) > -2.0]
    loud, quiet = SpeakerNorm.fit(voiced, prior_mean, prior_std), SpeakerNorm.fit(voiced - 0.5, prior_mean, prior_std)
    # 6 dB quieter reads much the same (the prior's share moves it a little on 1.4 s of voice)
    assert np.abs(loud(voiced) - quiet(voiced - 0.5)).mean() < 0.1


def test_mirroring_swaps_left_and_right_lip_points():
    from lipsync.training.train import MIRROR

    np.testing.assert_array_equal(MIRROR[MIRROR], np.arange(20))
    assert MIRROR[0] == 6 and MIRROR[12] == 16 and MIRROR[3] == 3 and MIRROR[18] == 18  # corners swap, middles stay


def test_checkpoint_round_trip_and_version_errors(tmp_path):
    model_a, model_b = _tiny_model(seed=0), _tiny_model(seed=1)
    model_b.mel_mean = np.full(80, -0.5, np.float32)
    path = str(tmp_path / "m.npz")
    ckpt_lib.save(path, ckpt_lib.from_models(model_a.dims, [model_a, model_b], {"note": "test"}))
    loaded_dims, loaded = ckpt_lib.build_models(ckpt_lib.load(path), path)
    assert loaded_dims == model_a.dims and len(loaded) == 2
    x = np.random.default_rng(0).normal(0, 1, (40, 80)).astype(np.float32)
    np.testing.assert_allclose(loaded[1].predict_steps(x), model_b.predict_steps(x), atol=1e-6)
    np.testing.assert_array_equal(loaded[1].mel_mean, model_b.mel_mean)

    data = dict(np.load(path))
    data["meta"] = np.array(str(data["meta"]).replace("lipsync-sync-model/2", "lipsync-sync-model/1"))
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
    from lipsync.generators.geometry import opening_of

    path = ckpt_lib.default_checkpoint()
    assert os.path.getsize(path) < 10e6
    _, models, _ = sync.load_models(path)
    person = sync.Person(np.zeros((20, 2), np.float32), models, span=0.2)
    wav = speechlike(3.0)  # syllables for 2.4 s, then silence
    opening = opening_of(sync.plan_mouths(person, wav, 25.0, 75))
    assert opening[:60].max() > opening[66:].max() + 0.08  # opens while speaking
    syllables = opening[5:58]
    assert np.corrcoef(syllables[:-1], syllables[1:])[0, 1] < 0.95 and np.ptp(syllables) > 0.05  # opens and closes
    assert np.ptp(opening[66:]) < 1e-6  # rests after the last syllable
    silent = opening_of(sync.plan_mouths(person, np.zeros(60 * 16000, np.float32), 25.0, 1500))
    assert np.ptp(silent) < 1e-6 and abs(silent[0]) < 1e-6  # a minute of silence: the rest shape throughout


def test_the_mouth_rests_over_a_pause_inside_speech():
    from lipsync.generators import sync
    from lipsync.generators.geometry import opening_of

    _, models, _ = sync.load_models()
    person = sync.Person(np.zeros((20, 2), np.float32), models, span=0.2)
    speech = speechlike(2.5, seed=4)[:32000]  # 2 s of syllables
    wav = np.concatenate([speech, np.zeros(8000, np.float32), speech])  # a 0.5 s pause at 2.0-2.5 s
    opening = opening_of(sync.plan_mouths(person, wav, 25.0, 112))
    inside = opening[int(2.0 * 25) + 3:int(2.5 * 25) - 3]  # the pause, less the closing and opening ramps
    assert len(inside) >= 6 and opening.std() > 0.02
    assert inside.std() <= 0.01 and inside.max() < 0.3 * opening.max()
    weight = sync.quiet_weight(audio_mel(wav), (np.arange(112) + 0.5) / 25)
    assert weight[:43].min() > 0.99  # the 0.25 s gaps between syllables are not pauses
    assert weight[48:60].max() == 0.0  # the pause (1.75-2.5 s: the last syllable ends at 1.75 s)


def audio_mel(wav):
    from lipsync.io import audio

    return audio.melspectrogram(wav)


def test_target_landmarks_reach_the_planned_mouth(astro_points):
    from lipsync.generators import sync
    from lipsync.face.landmarks import mouth_opening

    rest = landmarks.to_canonical(astro_points)
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


def test_personal_style_is_fitted_once_then_reused(tmp_path, media, talking_video, cache_dir, monkeypatch, caplog):
    from lipsync.generators import sync
    from lipsync.pipeline import lip_sync

    calls = []
    real = sync.fit_style

    def counting(*args, **kwargs):
        calls.append(real(*args, **kwargs))
        return calls[-1]

    monkeypatch.setattr(sync, "fit_style", counting)
    for k in range(2):
        with caplog.at_level(logging.DEBUG, logger="lipsync"):
            lip_sync(video_path=talking_video, audio_path=media["short_wav"], outfile=str(tmp_path / f"o{k}.mp4"),
                     quiet=True)
    assert len(calls) == 1 and calls[0].shape == (2, 20, 2)
    assert any("personal style from cache" in r.getMessage() for r in caplog.records)
    assert len(os.listdir(cache_dir / "personal")) == 1


def test_the_personal_style_is_one_map_for_every_frame():
    from lipsync.generators import sync

    rng = np.random.default_rng(0)
    predicted = rng.normal(0, 1, (200, 20, 2)).astype(np.float32)
    real = 1.4 * predicted[::-1] + 0.3  # the person's mouth: more spread, shifted, in another order
    scale, shift = sync.fit_style(predicted, real)
    np.testing.assert_allclose(scale, 1.4, atol=1e-3)
    np.testing.assert_allclose(shift, 0.3, atol=1e-3)
    wild = sync.fit_style(predicted, 50.0 * real)
    assert wild[0].max() <= sync.STYLE_LIMITS[1]


def test_personalize_on_without_own_speech_is_a_clear_error(tmp_path, media, cache_dir):
    from lipsync.pipeline import lip_sync

    with pytest.raises(InputError, match="face.mp4: cannot personalize: the video has no sound track"):
        lip_sync(video_path=media["video"], audio_path=media["short_wav"], outfile=str(tmp_path / "o.mp4"),
                 personalize="on", quiet=True)
    assert not os.path.exists(tmp_path / "o.mp4")


def test_training_writes_log_and_samples_and_resumes(tmp_path, media, talking_video, cache_dir):
    from lipsync.training import train

    out = str(tmp_path / "m.npz")
    train.train(data=[talking_video], out=out, steps=30, members=1, quiet=True)
    assert ckpt_lib.load(out).optimiser[0]["step"] == 30
    assert os.path.getsize(str(tmp_path / "m_samples.png")) > 1000
    train.train(data=[talking_video], out=out, steps=60, members=1, resume=True, quiet=True)
    ck = ckpt_lib.load(out)
    assert ck.optimiser[0]["step"] == 60 and ck.info["frames"] == 50
    rows = open(str(tmp_path / "m.log.csv")).read().split()
    assert rows[0] == "member,step,loss,seconds" and [r.split(",")[1] for r in rows[1:]] == ["25", "50"]
    with pytest.raises(InputError, match="all are held out"):
        train.train(data=[talking_video], holdout=["talking"], out=str(tmp_path / "h.npz"), steps=5, members=1,
                    quiet=True)


def test_train_script_without_videos_is_a_clear_error(tmp_path):
    proc = subprocess.run([sys.executable, "-c", "import sys; from lipsync.cli import train_main; sys.exit(train_main())", "--data",
                           str(tmp_path / "none"), "--out", str(tmp_path / "m.npz")], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == f"error: {tmp_path / 'none'}: no such file or folder"
    assert not os.path.exists(tmp_path / "m.npz")
