"""Small media made by the tests themselves (nothing is committed), and the path to ../shared/data."""
from __future__ import annotations

import os
import subprocess
import sys
import wave

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(ROOT), "shared", "data")
sys.path.insert(0, ROOT)


def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def write_wav(path: str, samples: np.ndarray, sr: int) -> str:
    """Writes float samples in [-1, 1] as 16-bit mono PCM."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())
    return path


def speechlike(seconds: float, sr: int = 16000, syllables_per_s: float = 4.0, seed: int = 0) -> np.ndarray:
    """Voiced 'syllables' (120 Hz harmonics shaped by a 700 Hz formant) separated by pauses."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    voice = sum(np.sin(2 * np.pi * 120 * k * t) / k * np.exp(-((120 * k - 700) / 500) ** 2) for k in range(1, 25))
    envelope = np.clip(np.sin(2 * np.pi * syllables_per_s / 2 * t), 0, None) ** 2
    envelope[t > seconds * 0.8] = 0.0  # a silent tail
    return (0.5 * voice / np.abs(voice).max() * envelope + 0.001 * rng.standard_normal(t.size)).astype(np.float32)


def astronaut_face(size: int = 256) -> np.ndarray:
    """The face of scikit-image's astronaut photo, BGR uint8 (size, size, 3)."""
    import cv2
    import skimage.data

    img = skimage.data.astronaut()[:, :, ::-1]
    crop = img[0:300, 80:380]
    return np.ascontiguousarray(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA))


def encode_frames(path: str, frames, fps: float, extra=()) -> str:
    h, w = frames[0].shape[:2]
    cmd = [ffmpeg(), "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}", "-r", str(fps),
           "-i", "-", *extra, "-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv420p", path]
    subprocess.run(cmd, input=b"".join(np.ascontiguousarray(f).tobytes() for f in frames), check=True)
    return path


def remux_late(clip: str, out: str, late_s: float) -> str:
    """`clip` with its sound stream starting `late_s` late (negative: its picture starts late); streams copied."""
    late = ["-itsoffset", f"{abs(late_s):.3f}", "-i", clip]
    args = ["-i", clip, *late] if late_s >= 0 else [*late, "-i", clip]
    subprocess.run([ffmpeg(), "-loglevel", "error", "-y", *args, "-map", "0:v:0", "-map", "1:a:0", "-c", "copy", out],
                   check=True)
    return out


def moving_face_frames(n: int, size: int = 256):
    """The astronaut face drifting a few pixels, as a head would."""
    import cv2

    face = astronaut_face(size)
    out = []
    for i in range(n):
        m = np.float32([[1, 0, 3 * np.sin(i / 7)], [0, 1, 2 * np.cos(i / 9)]])
        out.append(cv2.warpAffine(face, m, (size, size), borderMode=cv2.BORDER_REFLECT))
    return out


@pytest.fixture(scope="session")
def media(tmp_path_factory):
    """A dict of small generated files: face video (2 s, 25 fps), photo, speech-like wav..."""
    import cv2

    d = tmp_path_factory.mktemp("media")
    files = {}
    files["video"] = encode_frames(str(d / "face.mp4"), moving_face_frames(50), 25)
    files["photo"] = str(d / "face.png")
    cv2.imwrite(files["photo"], astronaut_face())
    files["wav"] = write_wav(str(d / "speech.wav"), speechlike(3.0), 16000)
    files["short_wav"] = write_wav(str(d / "short.wav"), speechlike(1.0, seed=1), 16000)
    files["wav44"] = write_wav(str(d / "speech44.wav"), speechlike(1.5, sr=44100), 44100)
    blank = [np.full((128, 128, 3), 90, np.uint8) for _ in range(10)]
    files["noface"] = encode_frames(str(d / "noface.mp4"), blank, 25)
    return files


@pytest.fixture(scope="session")
def astro():
    """The astronaut's face (BGR) and its 68 landmarks, as the tracker finds them."""
    from lipsync.face import track as face_track

    image = astronaut_face()
    points = face_track.FaceTracker(face_track.TrackSettings())(image)
    assert points is not None
    return image, points


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A private face-track cache for one test."""
    path = tmp_path / "cache"
    monkeypatch.setenv("LIPSYNC_CACHE_DIR", str(path))
    return path


def shared_clip(*parts: str) -> str:
    path = os.path.join(SHARED_DATA, *parts)
    if not os.path.exists(path):
        pytest.skip(f"{path} not present (integration data lives in ../shared/data)")
    return path
