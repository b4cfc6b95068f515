"""`pip install .` carries everything the default path needs: the wheel is built, installed
with --no-deps into a fresh virtual environment that sees the test environment's packages
through a .pth file, and its console scripts run from another folder."""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile

import pytest

from conftest import ROOT

MAX_WHEEL_MB = 13.0  # the shipped weights: 2.4 MB sync model, 3.2 MB speaking scorer, 1.5 MB judge; much more is a mistake


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "--disable-pip-version-check", "-q", "-w", str(out), ROOT], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (path,) = [str(out / f) for f in os.listdir(out) if f.endswith(".whl")]
    return path


def test_wheel_carries_the_weights_their_card_and_licence_and_stays_small(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("lipsync/assets/sync_model.npz", "lipsync/assets/MODEL_CARD.md", "lipsync/assets/LICENSE",
                   "lipsync/assets/lr_asd_talkset.npz", "lipsync/assets/LR_ASD_LICENSE", "lipsync/assets/LR_ASD.md",
                   "lipsync/assets/sync_judge.npz", "lipsync/assets/SYNC_JUDGE.md",
                   "lipsync/generators/sync.py", "lipsync/io/media.py", "lipsync/face/track.py",
                   "lipsync/render/mesh.py", "lipsync/eval/metrics.py"):
        assert needed in names, needed
    assert not [n for n in names if n.startswith(("tests/", "checkpoints/", "output/"))]
    assert os.path.getsize(wheel) / 1e6 < MAX_WHEEL_MB


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    env_dir = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = str(env_dir / "bin" / "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # the dependencies come from the test environment (nothing is downloaded); lipsync from the wheel
    with open(os.path.join(site, "test-env.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
                           "--disable-pip-version-check", "-q", wheel], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return env_dir


def test_installed_lipsync_runs_from_another_folder(installed, media, tmp_path):
    bin_dir = installed / "bin"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env["LIPSYNC_CACHE_DIR"] = str(tmp_path / "cache")
    where = subprocess.run([str(bin_dir / "python"), "-c", "import lipsync; print(lipsync.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, env=env, check=True).stdout
    assert where.startswith(str(installed))  # the wheel's copy, not the source tree
    out = tmp_path / "result.mp4"
    proc = subprocess.run([str(bin_dir / "lipsync"), "--video_path", media["video"], "--audio_path", media["short_wav"],
                           "--outfile", str(out), "--personalize", "off", "--quiet"],
                          capture_output=True, text=True, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.stat().st_size > 1000
    for script in ("lipsync-tts", "lipsync-evaluate", "lipsync-train", "lipsync-extract-frames", "lipsync-wav2lip",
                   "lipsync-demo"):
        proc = subprocess.run([str(bin_dir / script), "--help"], capture_output=True, text=True, cwd=tmp_path, env=env)
        assert proc.returncode == 0 and "usage" in proc.stdout, (script, proc.stderr[-500:])


def test_benchmark_script_starts():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "speed.py"), "--help"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "usage" in proc.stdout, proc.stderr[-500:]
