"""`--batch CSV --engine ray` on a local Ray runtime with two workers: the same outputs and
rules as the local batch, and a worker killed mid-job loses nothing.

Without Ray the tests skip with the reason; under CI=true (bash run.sh test installs it) they fail.
"""
import glob
import importlib.util
import os
import signal
import subprocess
import threading
import time

import pytest

from conftest import encode_frames, moving_face_frames, speechlike, write_wav
from lipsync.cli import lip_sync_main


@pytest.fixture(scope="module")
def ray_jobs(tmp_path_factory):
    if importlib.util.find_spec("ray") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Ray is missing under CI (bash run.sh test installs requirements-dev.txt)")
        pytest.skip("Ray is missing: pip install -r requirements-ray.txt")
    d = tmp_path_factory.mktemp("ray_batch")
    encode_frames(str(d / "face.mp4"), moving_face_frames(50), 25)
    write_wav(str(d / "speech.wav"), speechlike(2.0), 16000)
    write_wav(str(d / "long.wav"), speechlike(8.0, seed=2), 16000)
    (d / "bad.mp4").write_text("not a video")
    return d


def _csv(folder, name, rows):
    path = folder / name
    path.write_text("video,audio,outfile\n" + "".join(f"{v},{a},{o}\n" for v, a, o in rows))
    return str(path)


def test_ray_batch_writes_every_good_output_once_reports_the_bad_and_resumes(ray_jobs, cache_dir, capsys):
    csv = _csv(ray_jobs, "jobs.csv", [("face.mp4", "speech.wav", "out/a.mp4"), ("bad.mp4", "speech.wav", "out/b.mp4"),
                                      ("face.mp4", "long.wav", "out/c.mp4"), ("face.mp4", "speech.wav", "out/d.mp4")])
    assert lip_sync_main(["--batch", csv, "--engine", "ray", "--ray_cpus", "2", "--model", "warp"]) == 1
    out, err = capsys.readouterr()
    assert sorted(os.listdir(ray_jobs / "out")) == ["a.mp4", "c.mp4", "d.mp4"]  # once each, no partial file
    assert "failed (line 3): " in err and "bad.mp4: not a readable video" in err and "Traceback" not in err
    assert "batch: 3 done, 0 skipped (output existed), 1 failed" in out and " s in all" in out
    assert len(glob.glob(str(cache_dir / "tracks" / "*.npz"))) == 1  # one track for the one distinct video
    assert lip_sync_main(["--batch", csv, "--engine", "ray", "--ray_cpus", "2", "--model", "warp"]) == 1
    out, _ = capsys.readouterr()
    assert "batch: 0 done, 3 skipped (output existed), 1 failed" in out


def _kill_mid_job(folder, killed: list, stop: threading.Event):
    """Once a job's partial output appears in `folder`, kills (SIGKILL) the Ray workers running jobs."""
    while not stop.is_set():
        partial = glob.glob(os.path.join(str(folder), ".*.partial.mp4"))
        if partial:
            found = subprocess.run(["pgrep", "-f", "ray::_dub"], capture_output=True, text=True).stdout.split()
            for pid in found:
                os.kill(int(pid), signal.SIGKILL)
            killed.extend((p, int(pid)) for p in partial for pid in found)
            if found:
                return
        time.sleep(0.02)


def test_a_worker_killed_mid_job_loses_and_duplicates_nothing(ray_jobs, cache_dir, capsys):
    csv = _csv(ray_jobs, "kill.csv", [("face.mp4", "long.wav", f"killed/{n}.mp4") for n in "abc"])
    killed, stop = [], threading.Event()
    killer = threading.Thread(target=_kill_mid_job, args=(ray_jobs / "killed", killed, stop), daemon=True)
    killer.start()
    try:
        code = lip_sync_main(["--batch", csv, "--engine", "ray", "--ray_cpus", "2", "--model", "warp"])
    finally:
        stop.set()
        killer.join(5)
    out, err = capsys.readouterr()
    assert killed, "no worker was killed while it wrote an output"
    assert code == 0, err
    assert "batch: 3 done, 0 skipped (output existed), 0 failed" in out
    assert sorted(os.listdir(ray_jobs / "killed")) == ["a.mp4", "b.mp4", "c.mp4"]  # the partial file went too


def test_ray_cpus_belongs_to_a_local_runtime(ray_jobs, capsys):
    csv = _csv(ray_jobs, "cpus.csv", [("face.mp4", "speech.wav", "cpus/a.mp4")])
    assert lip_sync_main(["--batch", csv, "--engine", "ray", "--ray_cpus", "2", "--ray_address", "auto"]) == 2
    assert "--ray_cpus sizes the Ray runtime started on this machine" in capsys.readouterr().err


def test_engine_options_need_a_batch(capsys):
    assert lip_sync_main(["--video_path", "v.mp4", "--audio_path", "a.wav", "--engine", "ray"]) == 2
    assert "run the jobs of a --batch CSV: add --batch" in capsys.readouterr().err


def test_an_unreachable_cluster_or_a_missing_ray_is_one_line(tmp_path, capsys, monkeypatch):
    import sys

    from conftest import write_wav as wav

    wav(str(tmp_path / "a.wav"), speechlike(0.5), 16000)
    csv = _csv(tmp_path, "jobs.csv", [("a.wav", "a.wav", "out/x.mp4")])
    start = time.time()
    assert lip_sync_main(["--batch", csv, "--engine", "ray", "--ray_address", "127.0.0.1:1", "--model", "warp"]) == 2
    assert "cannot reach the Ray cluster at 127.0.0.1:1: Connection refused" in capsys.readouterr().err
    assert time.time() - start < 30  # Ray alone waits many minutes
    assert lip_sync_main(["--batch", csv, "--engine", "ray", "--ray_address", "nowhere", "--model", "warp"]) == 2
    assert "--ray_address nowhere: give HOST:PORT, ray://HOST:PORT or auto" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    assert lip_sync_main(["--batch", csv, "--engine", "ray", "--model", "warp"]) == 2
    assert "--engine ray needs Ray: pip install -r requirements-ray.txt" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "out")
