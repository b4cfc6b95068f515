"""Live mode: the streaming pieces against their whole-sound counterparts, an avatar fed in
small chunks, and the stream that `lip_sync.py --live` writes."""
import os
import subprocess
import sys

import numpy as np
import pytest

from lipsync import cli, live, pipeline
from lipsync.face import landmarks
from lipsync.face import track as face_track
from lipsync.io import audio
from lipsync.io import media as media_io

from conftest import speechlike

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("sizes", [(1,), (160, 7, 3000), (16000,)])
def test_mel_stream_gives_the_whole_sounds_steps(sizes):
    wav = speechlike(2.0, seed=3)
    stream, parts, first, k = audio.MelStream(), [], 0, 0
    while first < len(wav):
        size = sizes[k % len(sizes)]
        parts.append(stream.feed(wav[first:first + size]))
        first, k = first + size, k + 1
    got, whole = np.concatenate(parts, axis=1), audio.melspectrogram(wav)
    assert got.shape[1] == stream.steps == whole.shape[1] - 2  # the last two windows reach past the end
    np.testing.assert_allclose(got[:, 2:], whole[:, 2:got.shape[1]], atol=1e-4)  # the first two reach before the start


def test_numpy_network_gives_the_tensorflow_networks_output():
    from lipsync.generators.sync import load_models

    _, models, _ = load_models()
    model = models[0]
    x = np.random.default_rng(0).normal(0, 1, (101, model.dims.n_mels + model.dims.visemes)).astype(np.float32)
    np.testing.assert_allclose(model.forward_numpy(x), model._forward(x[None])[0].numpy(), atol=1e-4)


def test_running_normalisation_in_pieces_equals_at_once():
    from lipsync.generators.sync_model import SpeakerNorm

    rng = np.random.default_rng(1)
    mel = rng.normal(-1, 1, (80, 300)).astype(np.float32)
    mel[:, 100:140] = -4.0  # silence does not count
    prior = rng.normal(0, 1, 80), np.abs(rng.normal(1, 0.1, 80))
    pieces = SpeakerNorm(*prior)
    got = np.concatenate([pieces.running(mel[:, :77]), pieces.running(mel[:, 77:])])
    np.testing.assert_allclose(got, SpeakerNorm(*prior).running(mel), atol=1e-5)


@pytest.fixture(scope="module")
def avatar(media, tmp_path_factory):
    os.environ["LIPSYNC_CACHE_DIR"] = str(tmp_path_factory.mktemp("live-cache"))
    try:
        return live.Avatar.prepare(media["video"], quiet=True)
    finally:
        del os.environ["LIPSYNC_CACHE_DIR"]


def _openings(frames):
    tracker = face_track.FaceTracker(face_track.TrackSettings())
    return np.array([landmarks.mouth_opening(tracker(f.image)) for f in frames])


def test_avatar_fed_small_chunks_speaks_while_loud_and_rests_in_silence(avatar):
    wav = speechlike(5.0, seed=2)  # syllables for 4 s, then a silent second
    session = avatar.session()
    frames, early = [], 0
    for k, first in enumerate(range(0, len(wav), 320)):  # 20 ms chunks, int16 and float alike
        chunk = wav[first:first + 320]
        got = session.feed((chunk * 32767).astype(np.int16) if k % 2 else chunk)
        early += len(got)
        frames += got
    frames += session.finish()
    assert [f.index for f in frames] == list(range(125))  # 5 s at 25 fps
    assert frames[-1].time == pytest.approx(124 / 25)
    assert early >= 125 - (session.lookahead_s + 0.06) * 25  # frames came out while the sound was arriving
    assert session.lookahead_s < 0.3
    assert not any(f.dropped for f in frames) and frames[0].image.shape == avatar.frames[0].shape

    opening = _openings(frames)
    t = (np.arange(125) + 0.5) / 25
    loud = np.clip(np.sin(2 * np.pi * 2 * t), 0, None) ** 2
    loud[t > 4.0] = 0
    assert np.corrcoef(opening, loud)[0, 1] > 0.5
    speaking = opening[(t < 3.9) & (loud > 0.5)]
    resting = opening[t > 4.3]
    assert np.median(resting) < np.percentile(speaking, 10)  # closed in the silence
    plan = avatar.stage.stream(25.0)  # the same sound planned again: the silence's mouth is the rest shape itself
    mouths = np.concatenate([plan.feed(wav[:40000]), plan.feed(wav[40000:]), plan.finish()])
    np.testing.assert_allclose(mouths[t > 4.3], np.broadcast_to(avatar.stage.person.rest, mouths[t > 4.3].shape),
                               atol=1e-5)
    person = avatar.stage.person
    assert np.abs(mouths[(t < 3.9) & (loud > 0.5)] - person.rest).max() > 0.2 * person.span  # while it spoke

    idle = avatar.session().rest(1.0)  # no sound: the avatar goes on, the mouth at rest
    assert len(idle) >= 25 * (1.0 - 0.3) and idle[0].index == 0
    assert np.median(_openings(idle)) < np.percentile(speaking, 10)


def test_a_behind_driver_drops_frames_but_keeps_the_count(avatar):
    session = avatar.session(lookahead_s=0.1)
    frames = session.feed(speechlike(1.0), newest=2)
    assert len(frames) == 23 and sum(f.dropped for f in frames) == 21  # mid times up to 0.9 s
    assert frames[0].image is frames[20].image  # a dropped frame shows the image before it
    assert not frames[-1].dropped


def test_offline_run_with_a_lookahead_plans_as_a_stream(avatar):
    wav = speechlike(3.0, seed=5)
    stage = avatar.stage
    whole = stage.plan(wav, 25.0, 75)
    streamed = pipeline.stream_plan(stage, wav, 25.0, 0.2)
    assert streamed.shape == whole.shape
    from lipsync.generators.geometry import opening_of

    assert np.corrcoef(opening_of(whole), opening_of(streamed))[0, 1] > 0.8


def test_live_cli_writes_a_playable_stream_as_long_as_the_sound(tmp_path, media, cache_dir):
    out = str(tmp_path / "live.ts")
    assert cli.lip_sync_main(["--live", "--video_path", media["photo"], "--audio_path", media["wav"],
                              "--outfile", out, "--quiet"]) == 0
    info = media_probe(out)
    assert info["video"] == "h264" and info["audio"] == "aac"
    assert info["duration"] == pytest.approx(3.0, abs=0.12)
    assert len(list(media_io.VideoReader(media_io.probe(out)))) == 75
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".")]  # the temporary name was renamed


def media_probe(path):
    """Codecs and duration of a file, as ffmpeg reads them."""
    cmd = media_io.ffmpeg_command("-i", path, "-f", "null", "-", loglevel="info")
    err = subprocess.run(cmd, capture_output=True, text=True).stderr
    import re

    duration = re.findall(r"time=(\d+):(\d+):([\d.]+)", err)[-1]
    return {"video": "h264" if re.search(r"Video: h264", err) else None,
            "audio": "aac" if re.search(r"Audio: aac", err) else None,
            "duration": int(duration[0]) * 3600 + int(duration[1]) * 60 + float(duration[2])}


def test_live_reads_raw_sound_on_stdin_and_writes_mpeg_ts_to_stdout(tmp_path, media, cache_dir):
    pcm = (speechlike(2.0, seed=4) * 32767).astype("<i2").tobytes()
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "lip_sync.py"), "--live", "--video_path", media["photo"],
                           "--audio_path", "-", "--outfile", "-"], input=pcm, capture_output=True, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr.decode()[-500:]
    assert proc.stdout[:1] == b"G" and len(proc.stdout) % 188 == 0  # MPEG-TS packets
    report = proc.stderr.decode().strip().splitlines()[-1]
    assert report.startswith("live: ") and "latency" in report and "frames dropped" in report
    out = tmp_path / "stdout.ts"
    out.write_bytes(proc.stdout)
    assert media_probe(str(out))["duration"] >= 1.9
    assert not os.path.exists(tmp_path / "output")


@pytest.mark.parametrize("argv, message", [
    (["--model", "warp"], "live mode: model warp cannot plan a stream (it needs the whole sound first); models "
                          "that can: sync"),
    (["--lookahead", "2"], "look-ahead 2 s: must be between 0 and 1"),
    (["--outfile", "x.avi"], "x.avi"),
])
def test_live_refuses_what_it_cannot_do(tmp_path, media, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code = cli.lip_sync_main(["--live", "--video_path", media["photo"], "--audio_path", media["wav"], *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1


def test_live_without_sound_is_one_line(media, capsys):
    assert cli.lip_sync_main(["--live", "--video_path", media["photo"]]) == 2
    assert "no sound given" in capsys.readouterr().err


def test_offline_lookahead_is_for_the_sync_model_only(tmp_path, media, capsys):
    code = cli.lip_sync_main(["--video_path", media["photo"], "--audio_path", media["wav"], "--model", "warp",
                              "--lookahead", "0.2", "--outfile", str(tmp_path / "o.mp4")])
    assert code == 2 and "look-ahead: model warp cannot plan a stream" in capsys.readouterr().err


def test_live_with_no_sound_on_stdin_is_one_line_and_no_file(tmp_path, media, capsys, monkeypatch, cache_dir):
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    out = tmp_path / "empty.ts"
    code = cli.lip_sync_main(["--live", "--video_path", media["photo"], "--audio_path", "-", "--outfile", str(out),
                              "--quiet"])
    assert code == 2 and capsys.readouterr().err.strip() == "error: standard input: no sound arrived before it ended"
    assert not out.exists() and not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no partial file
