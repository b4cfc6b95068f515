"""Batch mode: lip_sync.py --batch pairs.csv."""
from __future__ import annotations

import os

import pytest

from conftest import shared_clip, speechlike, write_wav
from lipsync.face import track as face_track
from lipsync.generators import checkpoint as ckpt_lib
from lipsync.generators import sync
from lipsync.batch import read_jobs
from lipsync.cli import lip_sync_main
from lipsync.errors import InputError


def _csv(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_read_jobs_resolves_paths_and_default_outfiles_beside_the_csv(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path / "..")  # not the CSV's folder: outputs still go beside the CSV
    jobs = read_jobs(_csv(tmp_path / "jobs.csv", "video,audio,outfile\nv/a.mp4,s/x.wav,\n\nv/b.mp4,s/y.wav,o/b.mp4\n"),
                     output_dir="out")
    assert [j.line for j in jobs] == [2, 4]
    assert jobs[0].video == str(tmp_path / "v" / "a.mp4") and jobs[0].outfile == str(tmp_path / "out" / "a_x.mp4")
    assert jobs[1].outfile == str(tmp_path / "o" / "b.mp4")


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("clip,sound\na.mp4,b.wav\n", "must name the columns video and audio"),
    ("video,audio,speed\na.mp4,b.wav,2\n", "unknown column 'speed'"),
    ("video,audio\na.mp4,\n", "line 2: needs both a video and an audio path"),
    ("video,audio\n", "no jobs"),
    ("video,audio,outfile\na.mp4,b.wav,o.mp4\nc.mp4,d.wav,o.mp4\n", "lines 2 and 3 would both write"),
])
def test_bad_batch_files(tmp_path, text, message):
    path = _csv(tmp_path / "jobs.csv", text)
    with pytest.raises(InputError, match=message) as err:
        read_jobs(path)
    assert path in str(err.value)


def test_batch_on_shared_clips_with_one_bad_job(tmp_path, cache_dir, capsys, monkeypatch):
    clip_a, clip_b = shared_clip("grid", "bbaf2n.mpg"), shared_clip("grid", "lbax4n.mpg")
    write_wav(str(tmp_path / "one.wav"), speechlike(1.5, seed=1), 16000)
    write_wav(str(tmp_path / "two.wav"), speechlike(1.2, seed=2), 16000)
    jobs = _csv(tmp_path / "jobs.csv", f"video,audio,outfile\n{clip_a},one.wav,out/a1.mp4\n"
                f"{clip_a},two.wav,out/a2.mp4\n{clip_b},missing.wav,out/bad.mp4\n{clip_b},one.wav,out/b1.mp4\n")
    loads = []
    real_load = ckpt_lib.load
    monkeypatch.setattr(ckpt_lib, "load", lambda path: loads.append(path) or real_load(path))
    sync._load_models.cache_clear()
    tracked = []
    real_track = face_track.track_frames
    monkeypatch.setattr(face_track, "track_frames", lambda *a, **k: tracked.append(1) or real_track(*a, **k))

    assert lip_sync_main(["--batch", jobs, "--personalize", "off"]) == 1
    out, err = capsys.readouterr()
    assert "batch: 3 done, 0 skipped (output existed), 1 failed" in out
    bad = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(bad) == 1 and "line 4" in bad[0] and "missing.wav" in bad[0] and "not found" in bad[0]
    written = sorted(os.listdir(tmp_path / "out"))
    assert written == ["a1.mp4", "a2.mp4", "b1.mp4"]  # nothing partial for the bad job
    assert len(loads) == 1  # the model was loaded once for all jobs
    assert len(tracked) == 2  # one face tracking per video: the second job on clip_a used the cached track

    stamps = {name: os.stat(tmp_path / "out" / name).st_mtime_ns for name in written}
    assert lip_sync_main(["--batch", jobs, "--personalize", "off", "--quiet"]) == 1  # resume: only the bad job runs
    out, err = capsys.readouterr()
    assert out == "" and "missing.wav" in err
    assert {name: os.stat(tmp_path / "out" / name).st_mtime_ns for name in written} == stamps


def test_batch_flag_conflicts(tmp_path, capsys):
    jobs = _csv(tmp_path / "jobs.csv", "video,audio\na.mp4,b.wav\n")
    assert lip_sync_main(["--batch", jobs, "--video_path", "x.mp4"]) == 2
    assert "drop --video_path" in capsys.readouterr().err
    assert lip_sync_main(["--audio_path", "b.wav"]) == 2
    assert "missing --video_path" in capsys.readouterr().err
