"""The seams: the generator registry, the sound stage fed in chunks, progress and cancel
callbacks through the render loop, the face track as data, and the checks that run before
any long work."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT, speechlike
from lipsync import generators
from lipsync.cli import lip_sync_main
from lipsync.errors import Cancelled, InputError, MissingBackendError, OutputError
from lipsync.face import track as face_track
from lipsync.face.landmarks import mouth_opening
from lipsync.stages import SoundToMouth
from lipsync.io import media as media_io

PLUGINS = os.path.join(ROOT, "tests", "plugins")


def _openings(path: str) -> np.ndarray:
    tracker = face_track.FaceTracker(face_track.TrackSettings())
    return np.array([mouth_opening(tracker(f)) for f in media_io.VideoReader(media_io.probe(path))])


def test_a_new_generator_is_one_module_and_one_registry_line(tmp_path, media, cache_dir, monkeypatch, capsys):
    monkeypatch.syspath_prepend(PLUGINS)
    monkeypatch.setitem(generators.GENERATORS, "closed", "closed_mouth:ClosedMouthGenerator")  # the one line
    with pytest.raises(SystemExit):
        lip_sync_main(["--help"])
    assert "closed" in capsys.readouterr().out  # --model offers it
    shut, talking = str(tmp_path / "shut.mp4"), str(tmp_path / "talking.mp4")
    for model, out in (("closed", shut), ("warp", talking)):
        assert lip_sync_main(["--video_path", media["photo"], "--audio_path", media["wav"], "--model", model,
                              "--outfile", out, "--still", "--quiet"]) == 0
    assert _openings(shut).max() < 0.04  # the plugin's plan reached the pixels
    assert _openings(talking).max() > 0.12


class _Lookahead(SoundToMouth):
    """Each frame: the mean |sample| from its start to `lookahead_s` after its end."""

    lookahead_s = 0.08

    def plan(self, wav, fps, n_frames):
        out = np.zeros(n_frames, np.float32)
        for j in range(n_frames):
            a, b = int(j / fps * 16000), int(((j + 1) / fps + self.lookahead_s) * 16000)
            out[j] = np.abs(wav[a:b]).mean() if b > a and a < len(wav) else 0.0
        return out


@pytest.mark.parametrize("chunk", [160, 1234, 16000])
def test_sound_fed_in_chunks_gives_the_frames_of_the_whole_sound(chunk):
    wav = speechlike(2.0, seed=4)
    stage = _Lookahead()
    whole = stage.plan(wav, 25.0, 50)
    stream = stage.stream(25.0)
    got, early = [], 0
    for start in range(0, len(wav), chunk):
        out = stream.feed((wav[start:start + chunk] * 32767).astype(np.int16))  # int16 works as float does
        early += len(out) if start + chunk < len(wav) else 0
        got.append(out)
    got.append(stream.finish())
    np.testing.assert_allclose(np.concatenate(got), whole, atol=1e-3)
    assert early >= 50 - (chunk / 16000 + 0.08) * 25 - 2  # frames came out while the sound was still arriving


def test_a_stage_that_needs_the_whole_sound_answers_at_the_end():
    from lipsync.generators.geometry import Calibration
    from lipsync.generators.warp import LoudnessOpening

    stage = LoudnessOpening(Calibration(0.0, 0.2))
    assert stage.lookahead_s is None
    wav = speechlike(2.0)
    stream = stage.stream(25.0)
    assert len(stream.feed(wav[:16000])) == 0 and len(stream.feed(wav[16000:])) == 0
    np.testing.assert_array_equal(stream.finish(), stage.plan(wav, 25.0, 50))


def test_progress_reports_each_stage_and_cancel_stops_with_nothing_written(tmp_path, media, cache_dir):
    import lipsync

    seen = []
    out = str(tmp_path / "out.mp4")
    lipsync.lip_sync(video_path=media["video"], audio_path=media["short_wav"], outfile=out, model="warp",
                     quiet=True, progress=lambda stage, done, total: seen.append((stage, done, total)))
    assert ("tracking face", 50, 50) in seen and ("lip-syncing", 25, 25) in seen
    calls = []
    cancelled = str(tmp_path / "cancelled.mp4")
    with pytest.raises(Cancelled):
        lipsync.lip_sync(video_path=media["video"], audio_path=media["short_wav"], outfile=cancelled, model="warp",
                         quiet=True, use_cache=False, cancel=lambda: calls.append(1) or len(calls) > 20)
    assert 20 < len(calls) < 40  # stopped during tracking, not at the end
    assert sorted(os.listdir(tmp_path)) == ["cache", "out.mp4"]


def test_face_track_is_data_and_a_damaged_cache_entry_is_rebuilt(tmp_path, media, cache_dir, caplog):
    track = face_track.track_media(media_io.probe(media["video"]), 25.0, face_track.TrackSettings())
    assert track.landmarks.shape == (50, 68, 2) and track.boxes.shape == (50, 4) and track.valid.all()
    assert track.openings is track.openings  # computed once
    left, top, right, bottom = track.boxes[0]
    assert left < track.landmarks[0, 48, 0] < right and top < track.landmarks[0, 48, 1] < bottom
    again = face_track.FaceTrack.from_arrays(track.to_arrays())
    np.testing.assert_array_equal(again.landmarks, track.landmarks)
    assert again.exemplar.image.shape == track.exemplar.image.shape
    entry = face_track.cache_path(media["video"], face_track.TrackSettings(), 25.0, (256, 256))
    with open(entry, "r+b") as f:
        f.truncate(100)  # a damaged entry (a full disk, a killed run)
    with caplog.at_level(logging.WARNING, logger="lipsync"):
        assert face_track.cached_track(entry) is None
    assert "discarding the cache entry" in caplog.text and not os.path.exists(entry)
    rebuilt = face_track.track_media(media_io.probe(media["video"]), 25.0, face_track.TrackSettings())
    np.testing.assert_array_equal(rebuilt.landmarks, track.landmarks)
    assert os.path.exists(entry)


def test_help_shows_each_default_once_and_no_none(capsys):
    with pytest.raises(SystemExit):
        lip_sync_main(["--help"])
    text = capsys.readouterr().out
    assert "(default: None)" not in text and "(default: False)" not in text
    assert "(default: sync)" in text and "(default: 18)" in text
    assert "default: output/" not in text and "(default: ...)" not in text


def _no_tracking(*args, **kwargs):
    raise AssertionError("tracking started before the checks")


@pytest.mark.parametrize("options, error, message", [
    (dict(checkpoint_path="missing.npz"), MissingBackendError, "missing.npz: sync model checkpoint not found"),
    (dict(model="wav2lip", checkpoint_path="missing.pth"), MissingBackendError, "missing.pth"),
    (dict(crf=70), InputError, "crf 70: must be between 0 and 51"),
    (dict(model="nope"), InputError, "unknown model 'nope' (choose from sync, warp, wav2lip"),
    (dict(box=(10, 10, 5, 40)), InputError, "face box (10, 10, 5, 40)"),
    (dict(outfile="{wav}/out.mp4"), OutputError, "is a file, not a folder"),
])
def test_checks_fail_before_any_decoding_or_tracking(tmp_path, media, cache_dir, monkeypatch, options, error, message):
    import lipsync

    monkeypatch.setattr(face_track, "track_frames", _no_tracking)
    monkeypatch.setattr(face_track.FaceTracker, "__call__", _no_tracking)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error) as err:
        options = {k: v.format(wav=media["wav"]) if isinstance(v, str) else v for k, v in options.items()}
        lipsync.lip_sync(**{"video_path": media["video"], "audio_path": media["wav"], "quiet": True, **options})
    assert message in str(err.value)


def test_wav2lip_script_checks_its_checkpoint_before_tracking(tmp_path, media, monkeypatch):
    from lipsync.io.frames import extract_frames
    from lipsync.pipeline import lip_sync_frames

    frames = str(tmp_path / "frames")
    extract_frames(video_path=media["video"], output_dir=frames, quiet=True)
    monkeypatch.setattr(face_track.FaceTracker, "__call__", _no_tracking)
    pytest.importorskip("torch")
    with pytest.raises(MissingBackendError, match="missing.pth"):
        lip_sync_frames(frames_dir=frames, audio_path=media["wav"], checkpoint_path=str(tmp_path / "missing.pth"),
                        outfile=str(tmp_path / "o.mp4"), quiet=True)


def test_a_missing_checkpoint_fails_in_under_3_seconds_with_one_line(tmp_path, media):
    start = time.time()
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "lip_sync.py"), "--video_path", media["video"],
                           "--audio_path", media["wav"], "--checkpoint_path", str(tmp_path / "none.npz"),
                           "--outfile", str(tmp_path / "o.mp4")], capture_output=True, text=True, cwd=tmp_path)
    seconds = time.time() - start
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {tmp_path / 'none.npz'}: sync model checkpoint not found "
                                                "(train one with `lipsync-train`, or use the warp model, which needs "
                                                "no weights)"]
    assert seconds < 3.0, seconds
    assert os.listdir(tmp_path) == []


def test_the_readme_example_is_the_plugin_and_runs_as_written(tmp_path, media, cache_dir):
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    section = readme[readme.index("## Adding a generator"):readme.index("## Layout")]
    blocks = section.split("```")
    example = next(b for b in blocks if b.startswith("python\nfrom typing import Tuple"))[len("python\n"):]
    with open(os.path.join(PLUGINS, "closed_mouth.py"), encoding="utf-8") as f:
        plugin = f.read()
    assert example.strip() == plugin[plugin.index("from typing import Tuple"):].strip()
    command = next(b for b in blocks if b.startswith("bash\n"))[len("bash\n"):].strip()
    out = tmp_path / "closed.mp4"
    command = (command.replace("video/me.mp4", media["photo"]).replace("audio/line.wav", media["short_wav"])
               .replace(" python -c", f" {sys.executable} -c") + f" --outfile {out} --still --quiet")
    proc = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _openings(str(out)).max() < 0.04
