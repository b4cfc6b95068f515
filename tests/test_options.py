"""Options defined once: typed, checked when made (once per run), the command line's flags made
from them; a face track handed to a run instead of tracking."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lipsync import generators
from lipsync.cli import lip_sync_main, lip_sync_parser
from lipsync.errors import InputError
from lipsync.face import track as face_track
from lipsync.generators.options import GeneratorOptions, SyncOptions, Wav2LipOptions
from lipsync.io import media as media_io
from lipsync.options import Options, add_flags, describe, from_args, option, positive
from lipsync.pipeline import run_options
from lipsync.run_options import RunOptions


@pytest.mark.parametrize("make, message", [
    (lambda: RunOptions(crf=70), "crf 70: must be between 0 and 51"),
    (lambda: RunOptions(fps=0.0), "fps 0: must be more than 0 and at most 120"),
    (lambda: RunOptions(loop="sideways"), "unknown loop mode 'sideways' (choose from pingpong, forward)"),
    (lambda: RunOptions(face_index=-1), "face index -1: must be 0 or more"),
    (lambda: RunOptions(box=(10, 10, 5, 20)), "face box (10, 10, 5, 20): must be (left, top, right, bottom)"),
    (lambda: RunOptions(lookahead=2.0), "look-ahead 2 s: must be between 0 and 1"),
    (lambda: SyncOptions(personalize="maybe"), "unknown personalize mode 'maybe' (choose from auto, on, off)"),
    (lambda: SyncOptions(personalize_seconds=float("nan")), "personalization length nan s: must be more than 0"),
    (lambda: GeneratorOptions(pads=(1, 2)), "pads (1, 2): give four numbers (top, bottom, left, right)"),
    (lambda: Wav2LipOptions(device="tpu"), "unknown device 'tpu' (choose from auto, cpu, cuda)"),
])
def test_a_bad_value_is_refused_when_the_options_are_made(make, message):
    with pytest.raises(InputError) as err:
        make()
    assert message in str(err.value)


def test_flags_come_from_the_fields(capsys):
    @dataclasses.dataclass(frozen=True)
    class Speech(Options):
        rate: float = option(1.0, "how fast", check=positive("rate"))
        loud: bool = option(True, "shout", flag="--quiet_voice", negate=True)

    import argparse

    parser = argparse.ArgumentParser()
    add_flags(parser, [Speech])
    assert from_args(Speech, parser.parse_args(["--rate", "2", "--quiet_voice"])) == Speech(2.0, False)
    assert from_args(Speech, parser.parse_args([])) == Speech()
    with pytest.raises(InputError, match="rate -1: must be more than 0"):
        from_args(Speech, parser.parse_args(["--rate", "-1"]))
    assert describe(Speech)["rate"].help == "how fast"
    # the toolkit's flags: every generator's options and the run's, each once
    text = lip_sync_parser().format_help()
    for name in set(RunOptions.names()) | set(SyncOptions.names()) | set(Wav2LipOptions.names()):
        flag = "--no_cache" if name == "use_cache" else f"--{name}"
        assert text.count(f"  {flag} ") + text.count(f"  {flag}\n") == 1, flag


def test_keywords_of_lip_sync_become_the_typed_options():
    run, mine = run_options("sync", keywords=dict(fps=30.0, personalize="off", device="cpu"))
    assert run.fps == 30.0 and isinstance(mine, SyncOptions) and mine.personalize == "off"  # device: wav2lip's
    run, mine = run_options("warp", RunOptions(crf=20), SyncOptions(pads=(1, 2, 3, 4)), dict(batch_size=4))
    assert (run.crf, run.batch_size) == (20, 4) and type(mine) is GeneratorOptions and mine.pads == (1, 2, 3, 4)
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        run_options("sync", keywords=dict(colour="red"))
    with pytest.raises(InputError, match="look-ahead: model warp cannot plan a stream"):
        run_options("warp", keywords=dict(lookahead=0.2))


def test_a_run_checks_its_options_once(media, tmp_path, cache_dir, monkeypatch):
    made = []
    check = Options.__post_init__
    monkeypatch.setattr(Options, "__post_init__", lambda self: made.append(type(self).__name__) or check(self))
    # GeneratorOptions.__post_init__ calls the base one through super(): count the classes made
    assert lip_sync_main(["--video_path", media["photo"], "--audio_path", media["short_wav"], "--model", "warp",
                          "--outfile", str(tmp_path / "o.mp4"), "--quiet", "--still"]) == 0
    assert sorted(made) == ["GeneratorOptions", "RunOptions"]


def test_a_track_handed_over_is_used_instead_of_tracking(media, tmp_path, cache_dir, monkeypatch):
    import lipsync

    info = media_io.probe(media["video"])
    track = face_track.track_media(info, 25.0, face_track.TrackSettings(), use_cache=False)

    def no_tracking(*args, **kwargs):
        raise AssertionError("tracked although a track was given")

    monkeypatch.setattr("lipsync.pipeline.track_media", no_tracking)
    out = tmp_path / "given.mp4"
    lipsync.lip_sync(video_path=media["video"], audio_path=media["short_wav"], outfile=str(out), model="warp",
                     track=[track], quiet=True)
    assert media_io.probe(str(out)).has_video
    with pytest.raises(InputError, match="2 face tracks given"):
        lipsync.lip_sync(video_path=media["video"], audio_path=media["short_wav"], outfile=str(tmp_path / "x.mp4"),
                         model="warp", track=[track, track], quiet=True)
    with pytest.raises(InputError, match="the face track given has 10 frames, the input about 50"):
        lipsync.lip_sync(video_path=media["video"], audio_path=media["short_wav"], outfile=str(tmp_path / "y.mp4"),
                         model="warp", track=track.head(10), quiet=True)
    assert not (tmp_path / "x.mp4").exists() and not (tmp_path / "y.mp4").exists()


def test_the_input_sound_is_decoded_once(media, monkeypatch):
    from lipsync.generators import base

    calls = []
    real = base.load_audio
    monkeypatch.setattr(base, "load_audio", lambda path: calls.append(path) or real(path))
    info = media_io.probe(media["wav"])
    source = base.Source(media["wav"], False, True, 25.0, None, None)
    first, again = source.own_sound(1.0), source.own_sound(2.0)
    assert calls == [media["wav"]] and len(first) == 16000 and len(again) == 32000
    np.testing.assert_array_equal(again[:16000], first)
    assert info.has_audio and source.digest == source.digest


def test_every_generator_names_an_options_class():
    for name in generators.names():
        kind = generators.options_class(name)
        assert issubclass(kind, GeneratorOptions) and kind() == kind()  # the defaults pass their own checks
