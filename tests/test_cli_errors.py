"""Bad input through the real scripts: one line naming the file and the problem, exit 2,
no traceback, no output file left behind, inputs untouched."""
import hashlib
import os
import subprocess
import sys

import pytest

from conftest import ROOT, write_wav

import numpy as np


def run_script(script, *args, cwd=None, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=env, timeout=300)


def _digest(path):
    with open(path, "rb") as f:
        return hashlib.sha1(f.read()).hexdigest()


def assert_clean_failure(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [l for l in proc.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def outdir(tmp_path, cache_dir):
    d = tmp_path / "out"
    d.mkdir()
    return d


def _lip_sync(outdir, video, audio, *extra):
    return run_script("lip_sync.py", "--video_path", video, "--audio_path", audio,
                      "--outfile", str(outdir / "result.mp4"), "--quiet", *extra,
                      env_extra={"LIPSYNC_CACHE_DIR": str(outdir.parent / "cache")})


def test_missing_video(outdir, media):
    proc = _lip_sync(outdir, str(outdir / "nothere.mp4"), media["wav"])
    assert_clean_failure(proc, "nothere.mp4", "not found")
    assert os.listdir(outdir) == []


def test_missing_audio(outdir, media):
    proc = _lip_sync(outdir, media["video"], str(outdir / "nothere.wav"))
    assert_clean_failure(proc, "nothere.wav", "not found")


def test_corrupt_video(outdir, media, tmp_path):
    bad = tmp_path / "corrupt.mp4"
    with open(media["video"], "rb") as f:
        data = f.read()
    bad.write_bytes(b"\x00" * 64 + data[5000:9000])
    proc = _lip_sync(outdir, str(bad), media["wav"])
    assert_clean_failure(proc, "corrupt.mp4", "not a readable video")
    assert os.listdir(outdir) == []


def test_text_file_as_audio(outdir, media, tmp_path):
    text = tmp_path / "script.txt"
    text.write_text("Hello there, this is a script, not a sound file.\n" * 10)
    proc = _lip_sync(outdir, media["video"], str(text))
    assert_clean_failure(proc, "script.txt", "not an audio file")
    assert os.listdir(outdir) == []


def test_empty_audio(outdir, media, tmp_path):
    empty = write_wav(str(tmp_path / "silence0.wav"), np.zeros(0, np.float32), 16000)
    proc = _lip_sync(outdir, media["video"], empty)
    assert_clean_failure(proc, "silence0.wav", "audio is empty")
    assert os.listdir(outdir) == []


def test_no_face_anywhere(outdir, media):
    proc = _lip_sync(outdir, media["noface"], media["wav"])
    assert_clean_failure(proc, "noface.mp4", "no face found in any frame")
    assert os.listdir(outdir) == []


def test_unwritable_output_folder(media, tmp_path, cache_dir):
    blocker = tmp_path / "plainfile"
    blocker.write_text("not a folder")
    proc = run_script("lip_sync.py", "--video_path", media["video"], "--audio_path", media["wav"],
                      "--outfile", str(blocker / "out.mp4"), "--quiet")
    assert_clean_failure(proc, "plainfile", "is a file, not a folder")
    assert blocker.read_text() == "not a folder"


def test_outfile_equal_to_input_is_refused(media):
    before = _digest(media["video"])
    proc = run_script("lip_sync.py", "--video_path", media["video"], "--audio_path", media["wav"],
                      "--outfile", media["video"], "--quiet")
    assert_clean_failure(proc, "face.mp4", "also an input")
    assert _digest(media["video"]) == before


def test_audio_file_given_as_video(outdir, media):
    proc = _lip_sync(outdir, media["wav"], media["wav"])
    assert_clean_failure(proc, "speech.wav", "no video stream")


def test_empty_text(outdir, media):
    proc = run_script("lip_sync.py", "--video_path", media["photo"], "--text", "   ", "--quiet",
                      "--outfile", str(outdir / "x.mp4"))
    assert_clean_failure(proc, "the text to speak is empty")


def test_unknown_voice(outdir):
    proc = run_script("tts.py", "--text", "hello", "--voice", "klingon-xx", "--output", str(outdir / "x.wav"))
    assert_clean_failure(proc, "klingon-xx", "voice list")
    assert os.listdir(outdir) == []


def test_tts_empty_text_file(outdir, tmp_path):
    empty = tmp_path / "blank.txt"
    empty.write_text("\n  \n")
    proc = run_script("tts.py", "--text_file", str(empty), "--output", str(outdir / "x.wav"))
    assert_clean_failure(proc, "blank.txt", "empty")


def test_success_prints_a_summary(outdir, media):
    proc = run_script("lip_sync.py", "--video_path", media["photo"], "--audio_path", media["short_wav"],
                      "--outfile", str(outdir / "ok.mp4"), env_extra={"LIPSYNC_CACHE_DIR": str(outdir.parent / "c")})
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout and "25 frames" in proc.stdout and "0 without a face" in proc.stdout
    assert os.listdir(outdir) == ["ok.mp4"]


def test_evaluate_missing_video(tmp_path):
    proc = run_script("evaluate.py", "--video", str(tmp_path / "gone.mp4"))
    assert_clean_failure(proc, "gone.mp4", "not found")


def test_evaluate_photo_is_not_a_video(media):
    proc = run_script("evaluate.py", "--video", media["photo"])
    assert_clean_failure(proc, "face.png", "not a video")


def test_evaluate_side_by_side_needs_a_reference(media, tmp_path, cache_dir):
    proc = run_script("evaluate.py", "--video", media["video"], "--side_by_side", str(tmp_path / "s.mp4"), "--quiet",
                      env_extra={"LIPSYNC_CACHE_DIR": str(cache_dir)})
    assert_clean_failure(proc, "side-by-side video needs a reference")
    assert not (tmp_path / "s.mp4").exists()


def test_tally_rejects_a_broken_scores_file(tmp_path, media):
    out = tmp_path / "panel"
    assert run_script("evaluate.py", "panel", media["video"], "--out", str(out), "--quiet").returncode == 0
    broken = out / "scores-x.json"
    broken.write_text("{not json")
    proc = run_script("evaluate.py", "tally", str(broken))
    assert_clean_failure(proc, "scores-x.json", "invalid JSON")
