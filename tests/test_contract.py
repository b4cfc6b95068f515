"""Every registered generator, and the example plugin, through the same checks: a fail-fast
`check()`, a plan of the asked length, a stream that hands out frames while the sound arrives
where the generator says it can stream (and the generic stream equal to the whole-sound
plan), and frames rendered at the input's size."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

from conftest import ROOT, speechlike
from lipsync import generators
from lipsync.errors import InputError, LipSyncError
from lipsync.face import track as face_track
from lipsync.generators.base import Source
from lipsync.generators.options import GeneratorOptions
from lipsync.io import media as media_io
from lipsync.io.audio import frame_count
from lipsync.io.source import FrameSource
from lipsync.progress import Progress
from lipsync.stages import Replanned, SoundStream

PLUGIN = ("closed", "closed_mouth:ClosedMouthGenerator")
NAMES = generators.names() + [PLUGIN[0]]
FPS = 25.0


@pytest.fixture(autouse=True)
def plugin(monkeypatch):
    monkeypatch.syspath_prepend(os.path.join(ROOT, "tests", "plugins"))
    monkeypatch.setitem(generators.GENERATORS, *PLUGIN)


@pytest.fixture(scope="module")
def source(media):
    info = media_io.probe(media["video"])
    track = face_track.track_media(info, FPS, face_track.TrackSettings(), use_cache=False)
    return Source(media["video"], info.is_image, info.has_audio, FPS, track, track.smoothed())


def _settings(name: str, tmp_path_factory) -> GeneratorOptions:
    if name != "wav2lip":
        return generators.options_class(name)(use_cache=False)
    pytest.importorskip("torch")
    from test_wav2lip import _randomised, _save_official

    from lipsync.generators.wav2lip import build_generator

    path = _save_official(_randomised(build_generator()), tmp_path_factory.mktemp("ckpt") / "wav2lip_gan.pth")
    return generators.options_class(name)(checkpoint_path=path, use_cache=False)


@pytest.mark.parametrize("name", NAMES)
def test_check_fails_fast_on_missing_weights_or_passes(name, tmp_path):
    kind = generators.options_class(name)
    options = kind(checkpoint_path=str(tmp_path / "missing.weights")) if "checkpoint_path" in kind.names() else kind()
    start = time.monotonic()
    try:
        generators.get(name)(options).check()
    except LipSyncError as exc:
        assert "missing.weights" in str(exc)  # the message names the file
    assert time.monotonic() - start < 10  # before any decoding or tracking


@pytest.mark.parametrize("name", NAMES)
def test_generator_contract(name, source, media, tmp_path_factory):
    cls = generators.get(name)
    generator = cls(_settings(name, tmp_path_factory))
    generator.check()
    stage, renderer = generator.stages(source, Progress(quiet=True))

    wav = speechlike(2.0, seed=3)
    n = frame_count(len(wav), FPS)
    plan = stage.plan(wav, FPS, n)
    assert len(plan) == n
    first = np.asarray(plan[[0, n - 1]])
    assert first.shape[0] == 2 and np.isfinite(first).all()

    stream = stage.stream(FPS, 0.2)
    assert isinstance(stream, SoundStream)
    got, early = [], 0
    for start in range(0, len(wav), 320):  # 20 ms chunks, as live mode feeds them
        out = np.asarray(stream.feed(wav[start:start + 320]))
        early += len(out)
        got.append(out)
    assert stream.samples == len(wav)
    got.append(np.asarray(stream.finish()))
    streamed = np.concatenate(got)
    assert len(streamed) == n == stream.frames_out
    assert streamed.shape[1:] == first.shape[1:]
    if cls.streams:
        assert early >= n - (0.2 + 0.02) * FPS - 2  # frames came out while the sound was still arriving
    else:
        assert early == 0
        with pytest.raises(InputError, match=f"model {name} cannot plan a stream"):
            generators.require_stream(name, "live mode")
    if isinstance(stream, Replanned) and (cls.streams or stage.lookahead_s is None):
        np.testing.assert_allclose(streamed, np.asarray(plan[list(range(n))]), atol=1e-4)

    with FrameSource(media_io.probe(source.path), FPS) as frame:
        frames = [frame(0), frame(1)]
    drawn = renderer.render(frames, list(source.smooth.landmarks[:2]), plan[[0, 1]])
    assert len(drawn) == 2
    for before, after in zip(frames, drawn):
        assert after.shape == before.shape and after.dtype == np.uint8
