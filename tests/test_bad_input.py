"""The second bad-input matrix (issue 15): what a careful tester did to the toolkit, one test
per case (numbered as in the issue). Every case ends in one line naming the file and the
problem (or goes on with a warning, for a cache), and leaves nothing behind.
"""
import errno
import json
import logging
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT, astronaut_face, encode_frames, moving_face_frames, speechlike, write_wav

from lipsync import cache
from lipsync.batch import Job, read_jobs, run_batch
from lipsync.cli import evaluate_main, lip_sync_main, tts_main
from lipsync.errors import InputError, Interrupted, OutputError, stop_on_signals
from lipsync.face import track as face_track
from lipsync.generators import checkpoint as ckpt_lib
from lipsync.io import files, media as media_io
from lipsync.io.tts import voice_for_text
from lipsync.io.source import FrameSource, replayed


@pytest.fixture
def cli(capsys):
    """Runs a script's main in this process: (exit code, stdout, stderr). The scripts install
    SIGTERM/SIGHUP handlers; pytest's own come back afterwards."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}

    def run(main, *args):
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    yield run
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def one_error_line(code, err, *fragments):
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# 1. a cache that cannot be written: warn once, go on

def test_1_unwritable_cache_warns_once_and_the_run_goes_on(cli, media, tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "cache_is_a_file"
    blocker.write_text("x")
    monkeypatch.setenv("LIPSYNC_CACHE_DIR", str(blocker))
    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.WARNING, logger="lipsync"):
        code, _, err = cli(lip_sync_main, "--video_path", media["video"], "--audio_path", media["short_wav"],
                           "--outfile", out)
        cache.save(cache.entry_path("personal", "another entry"), {"style": np.zeros(3)})
    assert code == 0 and out.exists(), err
    warnings = [r.getMessage() for r in caplog.records if "cache" in r.getMessage()]
    assert len(warnings) == 1 and "going on without caching" in warnings[0], warnings
    assert blocker.read_text() == "x"


def test_1_read_only_cache_folder(tmp_path, monkeypatch, caplog):
    """EROFS (a read-only mount; chmod does not stop root) while writing the entry."""
    monkeypatch.setenv("LIPSYNC_CACHE_DIR", str(tmp_path / "ro"))
    cache._warned.clear()

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(np, "savez_compressed", read_only)
    with caplog.at_level(logging.WARNING, logger="lipsync"):
        for k in range(3):
            cache.save(cache.entry_path("tracks", k), {"a": np.zeros(2)})
    assert len(caplog.records) == 1 and "Read-only" in caplog.text


# 2. damaged or inconsistent cache entries are discarded and rebuilt

def _damage(arrays, how):
    arrays = dict(arrays)
    if how == "wrong shape":
        arrays["landmarks"] = arrays["landmarks"][:, :5]
    elif how == "boxes of another length":
        arrays["boxes"] = arrays["boxes"][:3]
    elif how == "bank of another length":
        arrays["bank_lengths"] = arrays["bank_lengths"][:-1]
    elif how == "fps nan":
        arrays["fps"] = np.float64("nan")
    return arrays


@pytest.mark.parametrize("how", ["wrong shape", "boxes of another length", "bank of another length", "fps nan",
                                 "too few frames"])
def test_2_inconsistent_track_entry_is_discarded_and_rebuilt(media, cache_dir, how, caplog):
    info, settings = media_io.probe(media["video"]), face_track.TrackSettings()
    track = face_track.track_media(info, 25.0, settings)
    entry = face_track.cache_path(media["video"], settings, 25.0, (256, 256))
    arrays = track.head(10).to_arrays() if how == "too few frames" else _damage(track.to_arrays(), how)
    np.savez(entry, **arrays)
    with caplog.at_level(logging.WARNING, logger="lipsync"):
        assert face_track.cached_track(entry, 50) is None
    assert "discarding the cache entry" in caplog.text and not os.path.exists(entry)
    rebuilt = face_track.track_media(info, 25.0, settings)
    np.testing.assert_array_equal(rebuilt.landmarks, track.landmarks)
    assert os.path.exists(entry)


def test_2_a_cache_entry_that_is_not_an_archive(cache_dir):
    entry = cache.entry_path("personal", "x")
    os.makedirs(os.path.dirname(entry))
    with open(entry, "wb") as f:
        f.write(b"PK\x03\x04 not really")
    from lipsync.generators.sync import _cached_style

    assert cache.load(entry, _cached_style) is None and not os.path.exists(entry)
    np.savez(entry, style=np.zeros((3, 3)))  # the wrong shape
    assert cache.load(entry, _cached_style) is None and not os.path.exists(entry)


# 3. large inputs in bounded memory

def test_3_frames_larger_than_4k_are_scaled_to_fit():
    assert media_io.fit_size(9000, 9000) == (4096, 4096)
    assert media_io.fit_size(7680, 4320) == (4096, 2304)
    assert media_io.fit_size(3840, 2160) == (3840, 2160)
    info = media_io.MediaInfo("x.mp4", 1.0, True, False, 9000, 6000, 25.0).fitted()
    assert (info.width, info.height, info.stored_size) == (4096, 2730, (9000, 6000))
    assert media_io.frames_in_flight(4096 * 2730 * 3) == 2 and media_io.frames_in_flight(640 * 480 * 3) == 8


def test_3_a_huge_photo_runs_in_bounded_memory(tmp_path):
    import cv2

    face = astronaut_face(512)
    big = cv2.resize(face, (6000, 6000), interpolation=cv2.INTER_LINEAR)
    photo = str(tmp_path / "huge.jpg")
    cv2.imwrite(photo, big, [cv2.IMWRITE_JPEG_QUALITY, 80])
    wav = write_wav(str(tmp_path / "s.wav"), speechlike(0.3), 16000)
    out = tmp_path / "o.mp4"
    code = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); print(p.returncode); print(p.stdout + p.stderr)")
    proc = subprocess.run([sys.executable, "-c", code, sys.executable, os.path.join(ROOT, "lip_sync.py"),
                           "--video_path", photo, "--audio_path", wav, "--outfile", str(out), "--still",
                           "--personalize", "off"], capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, LIPSYNC_CACHE_DIR=str(tmp_path / "cache")))
    peak_kb, returncode, text = proc.stdout.split("\n", 2)
    assert returncode == "0", text
    assert "scaled down from 6000x6000" in text and "larger than 4096 pixels" in text
    info = media_io.probe(str(out))
    assert (info.width, info.height) == (4096, 4096)
    assert int(peak_kb) < 2_500_000, f"peak memory {int(peak_kb) / 1e6:.2f} GB"


def test_3_a_large_photo_is_tracked_at_the_size_it_is_drawn(tmp_path):
    import cv2

    path = str(tmp_path / "large.png")
    cv2.imwrite(path, cv2.resize(astronaut_face(512), (5000, 5000), interpolation=cv2.INTER_LINEAR))
    info = media_io.probe(path).fitted()
    track = face_track.track_media(info, 25.0, face_track.TrackSettings())
    face = track.landmarks[0]
    assert (info.width, info.height) == (4096, 4096) and track.valid.all()
    assert 1000 < face[:, 0].min() and face[:, 0].max() < 4096 and face[:, 1].max() < 4096


# 4. the frames kept while the video plays again: compact, checked, and a full disk is one line

def _frames_video(tmp_path, n=12):
    """A face before a plain wall, as in most footage."""
    frames = []
    for face in moving_face_frames(n):
        frame = np.full((384, 512, 3), (150, 160, 170), np.uint8)
        frame[64:320, 128:384] = face
        frames.append(frame)
    return encode_frames(str(tmp_path / "v.mp4"), frames, 25)


def test_4_spool_is_lossless_and_compact(tmp_path):
    info = media_io.probe(_frames_video(tmp_path))
    decoded = list(media_io.VideoReader(info))
    with FrameSource(info, 25.0, keep=range(12)) as frame:
        forward = [np.array(frame(i)) for i in range(12)]
        back = [frame(i) for i in range(11, -1, -1)][::-1]
        spooled = frame.__self__.spool.size
    for a, b, c in zip(decoded, forward, back):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert spooled < 0.5 * 12 * decoded[0].nbytes  # raw frames would take 12 x 590 kB


def test_4_only_the_frames_that_play_again_are_kept():
    assert replayed(50, 50) == set() and replayed(60, 50) == set(range(39, 49))
    assert replayed(60, 50, "forward") == set(range(10)) and replayed(1000, 50) == set(range(50))


def test_4_spool_space_is_checked_before_the_first_frame(tmp_path, monkeypatch):
    info = media_io.probe(_frames_video(tmp_path))
    monkeypatch.setattr(files, "free_bytes", lambda folder: 1000)
    with pytest.raises(OutputError, match="needs about .* GB, only 0.0 GB free .*set TMPDIR"):
        FrameSource(info, 25.0, keep=range(12))


def test_4_full_tmpdir_while_spooling_is_one_line(cli, media, tmp_path, monkeypatch, cache_dir):
    def full(fd, data, offset):  # the spool's writes, on a disk that is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full)
    out = tmp_path / "out" / "o.mp4"
    code, _, err = cli(lip_sync_main, "--video_path", media["video"], "--audio_path", media["wav"],
                       "--outfile", out, "--quiet", "--personalize", "off")
    one_error_line(code, err, "no space left on the disk", "TMPDIR")
    assert not (tmp_path / "out").exists()


# 5. SIGTERM and SIGHUP stop a run like Ctrl-C; leftovers of killed runs are removed

def _default_signals():
    for sig in (signal.SIGINT, signal.SIGTERM):  # a shell running the suite in the background ignores Ctrl-C
        signal.signal(sig, signal.SIG_DFL)


@pytest.mark.parametrize("sig, name", [(signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM")])
def test_5_ctrl_c_and_sigterm_leave_nothing(media, tmp_path, sig, name):
    long_sound = write_wav(str(tmp_path / "long.wav"), np.tile(speechlike(3.0), 60), 16000)  # 3 min: encoding lasts
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "lip_sync.py"), "--video_path", media["photo"],
                             "--audio_path", long_sound, "--outfile", str(out_dir / "o.mp4"), "--quiet"],
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals,
                            env=dict(os.environ, LIPSYNC_CACHE_DIR=str(tmp_path / "cache")))
    deadline = time.time() + 120
    while not any(".partial" in f for f in os.listdir(out_dir)):  # wait until encoding has begun
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read() if proc.poll() is not None else "timeout"
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    assert err.strip().splitlines()[-1] == f"interrupted ({name}): no output written" and "Traceback" not in err, err
    assert os.listdir(out_dir) == []


def test_5_sighup_in_the_middle_of_writing(tmp_path, cli):
    saved = signal.getsignal(signal.SIGHUP)
    try:
        stop_on_signals()
        with pytest.raises(Interrupted) as stopped:
            with files.atomic_output(str(tmp_path / "new" / "x.mp4")) as tmp:
                with open(tmp, "wb") as f:
                    f.write(b"half")
                os.kill(os.getpid(), signal.SIGHUP)
                time.sleep(1)
    finally:
        signal.signal(signal.SIGHUP, saved)
    assert stopped.value.exit_code == 128 + signal.SIGHUP and stopped.value.name == "SIGHUP"
    assert os.listdir(tmp_path) == []


def test_5_nohup_stays_nohup_while_the_encoder_starts(tmp_path):
    saved = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        stop_on_signals()
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        with media_io.signals_deferred():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, saved)


def test_5_leftovers_of_killed_runs_are_removed(tmp_path):
    dead = dead_pid()
    stale = tmp_path / f".o.lipsync-{files.HOST}-{dead}-0123abcd.partial.mp4"
    live = tmp_path / f".o.lipsync-{files.HOST}-{os.getpid()}-0123abcd.partial.mp4"
    elsewhere = tmp_path / f".o.lipsync-abcdef-{dead}-0123abcd.partial.mp4"
    mine = tmp_path / ".notes.partial.mp4"
    looks_stale = tmp_path / f".o.lipsync-{files.HOST}-{dead}-x.lipsync-{files.HOST}-{os.getpid()}-0123abcd.partial.mp4"
    for path in (stale, live, elsewhere, mine, looks_stale):
        path.write_bytes(b"x")
    files.write_file(str(tmp_path / "o.json"), "{}")
    assert not stale.exists() and live.exists() and elsewhere.exists() and mine.exists() and looks_stale.exists()
    entry = cache.entry_path("tracks", "k")
    os.makedirs(os.path.dirname(entry), exist_ok=True)
    stale_tmp = f"{entry[:-4]}.lipsync-{files.HOST}-{dead}-0123abcd.tmp.npz"
    open(stale_tmp, "wb").close()
    cache.save(entry, {"a": np.zeros(1)})
    assert not os.path.exists(stale_tmp) and os.path.exists(entry)


def test_7_full_disk_while_writing_any_output(tmp_path):
    with pytest.raises(OutputError, match="no space left on the disk for the output"):
        with files.atomic_output(str(tmp_path / "out" / "speech.wav")):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert os.listdir(tmp_path) == []


def test_7_ctrl_c_while_writing_the_cache(cache_dir, monkeypatch):
    def stopped(path, **arrays):
        open(path, "wb").close()
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", stopped)
    entry = cache.entry_path("tracks", "stopped")
    with pytest.raises(KeyboardInterrupt):
        cache.save(entry, {"a": np.zeros(1)})
    assert os.listdir(os.path.dirname(entry)) == []


# 6. an existing output: a single run replaces it and says so; a batch skips it unless --overwrite

def test_6_replaced_output_is_said(cli, media, tmp_path, cache_dir):
    out = tmp_path / "o.mp4"
    out.write_bytes(b"an older result")
    code, stdout, err = cli(lip_sync_main, "--video_path", media["video"], "--audio_path", media["short_wav"],
                            "--outfile", out, "--personalize", "off")
    assert code == 0 and stdout.startswith(f"replaced {out}:"), (stdout, err)


def test_6_batch_overwrite(tmp_path):
    jobs = [Job(2, "a.mp4", "a.wav", str(tmp_path / "a_out.mp4")), Job(3, "b.mp4", "b.wav", str(tmp_path / "b_out.mp4"))]
    (tmp_path / "a_out.mp4").write_bytes(b"done before")
    ran = []
    assert [o.status for o in run_batch(jobs, ran.append)] == ["skipped", "done"]
    assert [o.status for o in run_batch(jobs, ran.append, overwrite=True)] == ["done", "done"]
    assert [j.line for j in ran] == [3, 2, 3]


# 7. a full disk under the cache

def test_7_full_disk_under_the_cache_leaves_no_temporary_file(cache_dir, monkeypatch, caplog):
    real = np.savez_compressed

    def fill_up(path, **arrays):
        real(path, **arrays)  # some bytes reach the disk, then it is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", fill_up)
    cache._warned.clear()
    entry = cache.entry_path("tracks", "full")
    with caplog.at_level(logging.WARNING, logger="lipsync"):
        cache.save(entry, {"a": np.zeros(100)})
    assert "No space left" in caplog.text
    assert os.listdir(os.path.dirname(entry)) == []


# 8. malformed checkpoints: one line naming the field

def _checkpoint(tmp_path, meta_change=None, weights_change=None):
    arrays = dict(np.load(ckpt_lib.default_checkpoint()))
    meta = json.loads(str(arrays["meta"]))
    if meta_change:
        meta = meta_change(meta)
    arrays["meta"] = np.array(json.dumps(meta))
    if weights_change:
        weights_change(arrays)
    path = str(tmp_path / "bad.npz")
    np.savez(path, **arrays)
    return path


def _nan_weights(arrays):
    key = sorted(k for k in arrays if k.startswith("m0_"))[0]
    arrays[key] = np.full_like(arrays[key], np.nan)


@pytest.mark.parametrize("meta_change, weights_change, fragment", [
    (lambda m: [m], None, "must be a JSON object, not a list"),
    (lambda m: {k: v for k, v in m.items() if k != "dims"}, None, "no 'dims' field"),
    (lambda m: {**m, "members": "3"}, None, "'members' must be a whole number"),
    (lambda m: {**m, "members": 0}, None, "'members' must be a whole number of ensemble members from 1"),
    (lambda m: {**m, "dims": {**m["dims"], "kernel": "3"}}, None, "'kernel' must be a whole number"),
    (lambda m: {**m, "info": [1]}, None, "'info' must be an object"),
    (None, _nan_weights, "member 0's weights mel_mean are not all finite"),
])
def test_8_malformed_checkpoint(cli, media, tmp_path, meta_change, weights_change, fragment):
    path = _checkpoint(tmp_path, meta_change, weights_change)
    code, _, err = cli(lip_sync_main, "--video_path", media["video"], "--audio_path", media["short_wav"],
                       "--checkpoint_path", path, "--outfile", tmp_path / "o.mp4", "--quiet")
    one_error_line(code, err, "bad.npz", fragment)
    assert not (tmp_path / "o.mp4").exists()


# 9. the other scripts

def test_9_tts_output_is_a_folder(cli, tmp_path):
    code, _, err = cli(tts_main, "--text", "hello", "--output", tmp_path)
    one_error_line(code, err, str(tmp_path), "is a folder")


def test_9_evaluate_json_is_a_folder(cli, media, tmp_path):
    code, _, err = cli(evaluate_main, "--video", media["video"], "--json", tmp_path, "--quiet")
    one_error_line(code, err, str(tmp_path), "is a folder")


def test_9_panel_out_is_a_file(cli, media, tmp_path):
    (tmp_path / "taken").write_text("mine")
    code, _, err = cli(evaluate_main, "panel", media["video"], "--out", tmp_path / "taken")
    one_error_line(code, err, "taken: is a file")
    assert (tmp_path / "taken").read_text() == "mine"


@pytest.mark.parametrize("key, scores, fragment", [
    ([1, 2], {"panel_id": "p", "scores": {}}, "key.json: the panel key must be a JSON object, not a list"),
    ({"panel_id": "p"}, {"panel_id": "p", "scores": {}}, "key.json: the panel key has no 'clips' field"),
    ({"panel_id": "p", "clips": {"A": "a.mp4"}}, [1], "s.json: the scores file must be a JSON object"),
    ({"panel_id": "p", "clips": {"A": "a.mp4"}}, "[" * 100000 + "]" * 100000, "s.json: not a scores file (invalid JSON"),
    ({"panel_id": "p", "clips": {"A": "a.mp4"}}, "[" + "9" * 5000 + "]", "s.json: not a scores file (invalid JSON"),
    ({"panel_id": "p", "clips": {"A": "a.mp4"}}, {"panel_id": "p", "scores": {"A": {"sync": True, "naturalness": 3}}},
     "'sync' must be a whole number 1-5, not true"),
])
def test_9_tally_checks_every_field(cli, tmp_path, key, scores, fragment):
    (tmp_path / "key.json").write_text(json.dumps(key))
    (tmp_path / "s.json").write_text(scores if isinstance(scores, str) else json.dumps(scores))
    code, _, err = cli(evaluate_main, "tally", tmp_path / "s.json")
    one_error_line(code, err, fragment)


# 10. output names ffmpeg cannot write: refused up front, naming the user's path

@pytest.mark.parametrize("name, fragment", [("o", "needs an extension"), ("o.txt", "cannot be a .txt file"),
                                            ("o.gif", "cannot be a .gif file")])
def test_10_output_format_is_checked_first(cli, media, tmp_path, name, fragment):
    start = time.time()
    code, _, err = cli(lip_sync_main, "--video_path", media["video"], "--audio_path", media["short_wav"],
                       "--outfile", tmp_path / name, "--quiet")
    one_error_line(code, err, f"{tmp_path / name}: the output {fragment}", ".mp4, .mov")
    assert os.listdir(tmp_path) == [] and time.time() - start < 10


# 11. long names

def test_11_a_240_character_output_name(cli, media, tmp_path, cache_dir):
    out = tmp_path / ("a" * 236 + ".mp4")
    code, _, err = cli(lip_sync_main, "--video_path", media["video"], "--audio_path", media["short_wav"],
                       "--outfile", out, "--quiet", "--personalize", "off")
    assert code == 0 and out.exists(), err
    assert os.listdir(tmp_path) == [out.name, "cache"] or sorted(os.listdir(tmp_path)) == sorted([out.name, "cache"])


def test_11_long_input_name_gets_a_default_output_that_fits(cli, media, tmp_path, cache_dir, monkeypatch):
    video = tmp_path / ("v" * 250 + ".mp4")
    video.write_bytes(open(media["video"], "rb").read())
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(lip_sync_main, "--video_path", video.name, "--audio_path", media["short_wav"], "--quiet",
                       "--personalize", "off")
    assert code == 0, err
    (made,) = os.listdir(tmp_path / "output")
    assert len(made.encode()) <= 255 and made.endswith("_short.mp4")


def test_11_a_failed_run_leaves_no_empty_output_folder(tmp_path):
    with pytest.raises(RuntimeError):
        with files.atomic_output(str(tmp_path / "output" / "deeper" / "o.mp4")):
            raise RuntimeError("the render failed")
    assert os.listdir(tmp_path) == []


def test_11_failed_frame_extraction_leaves_no_folder(tmp_path, monkeypatch):
    from lipsync.io import frames as frames_lib

    video = _frames_video(tmp_path, n=4)
    monkeypatch.setattr(frames_lib.cv2, "imwrite", lambda *args: False)  # as on a full disk
    with pytest.raises(OutputError, match="frames/new: cannot write frame 0 \\(is the disk full\\?\\)"):
        frames_lib.extract_frames(video_path=video, output_dir=str(tmp_path / "frames" / "new"), quiet=True)
    assert sorted(os.listdir(tmp_path)) == ["v.mp4"]


def test_9_tts_text_file_is_not_its_own_output(cli, tmp_path):
    notes = tmp_path / "notes.wav"
    notes.write_text("hello there")
    code, _, err = cli(tts_main, "--text_file", notes, "--output", notes)
    one_error_line(code, err, "notes.wav: the speech output file is also an input")
    assert notes.read_text() == "hello there"


# 12. odd options

@pytest.mark.parametrize("args, fragment", [
    (["--fps", "nan"], "fps nan"),
    (["--personalize_seconds", "nan"], "personalization length nan"),
    (["--box", "0", "100", "5000", "6000"], "does not fit in the 256x256 frame"),
    (["--box", "100", "50", "0", "100"], "bottom > top"),
])
def test_12_bad_option_values(cli, media, tmp_path, args, fragment):
    code, _, err = cli(lip_sync_main, "--video_path", media["video"], "--audio_path", media["short_wav"],
                       "--outfile", tmp_path / "o.mp4", "--quiet", *args)
    one_error_line(code, err, fragment)


def test_12_face_index_beyond_the_faces_found(cli, media, tmp_path, cache_dir):
    code, _, err = cli(lip_sync_main, "--video_path", media["video"], "--audio_path", media["short_wav"],
                       "--outfile", tmp_path / "o.mp4", "--quiet", "--face_index", "5")
    one_error_line(code, err, "no face number 5", "at most 1 face in a frame")


def test_12_batch_job_writing_its_own_input(tmp_path):
    (tmp_path / "jobs.csv").write_text("video,audio,outfile\nclip.mp4,s.wav,./clip.mp4\n")
    with pytest.raises(InputError, match="line 2: the output .*clip.mp4 is also the job's input"):
        read_jobs(str(tmp_path / "jobs.csv"))


def test_12_ctrl_c_in_a_batch_says_what_is_kept(tmp_path):
    jobs = [Job(k + 2, f"{k}.mp4", "a.wav", str(tmp_path / f"{k}_out.mp4")) for k in range(3)]

    def run_one(job):
        if job.line == 3:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted) as stopped:
        run_batch(jobs, run_one)
    assert stopped.value.kept.startswith("1 finished job kept") and stopped.value.exit_code == 130


# 13. decided: outputs beside the CSV (test_batch), the voice from the text's script

def test_13_voice_follows_the_script_of_the_text():
    assert voice_for_text("مرحبا بالعالم") == "sem/ar" and voice_for_text("שלום עולם") == "sem/he"
    assert voice_for_text("Привет, мир") == "zle/ru" and voice_for_text("日本語のテキスト") == "jpx/ja"
    assert voice_for_text("Hello world") == voice_for_text("Café, naïve") == "gmw/en"


def test_13_a_script_this_espeak_lacks_falls_back_to_english(monkeypatch):
    from lipsync.io import tts

    def lacking(name):
        raise InputError(f"unknown voice {name!r}")

    monkeypatch.setattr(tts, "find_voice", lacking)
    assert tts.voice_for_text("שלום עולם") == "gmw/en"


# 14. a file name that starts with '-'

def test_14_dash_file_name_gets_a_hint(cli):
    code, _, err = cli(lip_sync_main, "--video_path", "-x.mp4", "--audio_path", "a.wav")
    assert code == 2 and "--video_path=-name.mp4" in err and "Traceback" not in err
