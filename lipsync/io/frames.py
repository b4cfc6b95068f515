"""Frame folders: a video's frames as numbered image files plus `frames.json`.

`extract_frames` writes one (PNG by default, lossless) and `FrameFolder` reads one back
by index, for the Wav2Lip path: users can inspect or retouch frames between the steps.
A folder is complete only when `frames.json` is there: everything is written under a
hidden temporary folder first and moved into place at the end.
"""
from __future__ import annotations

import dataclasses
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
from typing import Iterator, List, Optional

import cv2
import numpy as np
from tqdm import tqdm

from ..errors import InputError, OutputError
from . import jsondoc
from .files import HOST, disk_errors, make_folder, remove_made, sweep, temp_tag
from .media import Colour, VideoReader, ffmpeg_command, last_error, probe

INDEX_FILE = "frames.json"
AUDIO_FILE = "audio.wav"
FORMATS = ("png", "jpg")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
_FRAME_NAME = re.compile(r"^\d{6,}\.(png|jpe?g|bmp|webp)$", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class FramesInfo:
    folder: str
    fps: float
    frame_count: int
    width: int
    height: int
    source: Optional[str]
    audio: Optional[str]  # file name inside the folder, or None
    colour: Colour = Colour()  # the source video's colour description, kept by lip_sync_wav2lip.py


def frame_name(index: int, fmt: str) -> str:
    return f"{index:06d}.{fmt}"


def _existing_frames(folder: str) -> List[str]:
    if not os.path.isdir(folder):
        return []
    names = [n for n in os.listdir(folder) if _FRAME_NAME.match(n) or n in (INDEX_FILE, AUDIO_FILE)]
    return sorted(names)


def _encode_params(fmt: str, quality: Optional[int]) -> list:
    if fmt == "jpg":
        q = 95 if quality is None else quality
        if not 1 <= q <= 100:
            raise InputError(f"quality {q}: JPEG quality must be between 1 and 100")
        return [cv2.IMWRITE_JPEG_QUALITY, q]
    q = 1 if quality is None else quality
    if not 0 <= q <= 9:
        raise InputError(f"quality {q}: PNG compression level must be between 0 and 9")
    return [cv2.IMWRITE_PNG_COMPRESSION, q]


def _extract_sound(video_path: str, dst: str) -> None:
    cmd = ffmpeg_command("-i", video_path, "-map", "0:a:0", "-vn", "-c:a", "pcm_s16le", "-y", dst)
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise InputError(f"{video_path}: cannot extract the sound track ({last_error(proc.stderr, 'ffmpeg failed')})")


def extract_frames(*, video_path: str, output_dir: str, fmt: str = "png", quality: Optional[int] = None,
                   overwrite: bool = False, quiet: bool = False) -> FramesInfo:
    """Writes every frame of `video_path` to `output_dir` as 000000.png, 000001.png, ...

    Also writes `frames.json` (fps, frame count, size, source, sound file name) and the
    sound track as `audio.wav` when the video has one. A folder that already holds frames
    is refused unless `overwrite`; then its old frames, index and sound are replaced.
    """
    if fmt not in FORMATS:
        raise InputError(f"unknown frame format {fmt!r} (choose from {', '.join(FORMATS)})")
    params = _encode_params(fmt, quality)
    info = probe(video_path)
    if not info.has_video or info.is_image:
        raise InputError(f"{video_path}: has no video stream to extract frames from")
    old = _existing_frames(output_dir)
    if old and not overwrite:
        raise OutputError(f"{output_dir}: already holds {len(old)} frame files (e.g. {old[0]}); "
                          f"allow overwriting to replace them, or choose another folder")
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise OutputError(f"{output_dir}: exists and is not a folder")
    made = make_folder(output_dir)
    try:
        sweep(output_dir, f".lipsync-{HOST}-*")  # what runs killed outright left
        staging = tempfile.mkdtemp(prefix=f".{temp_tag()}frames-", dir=output_dir)
    except OSError as exc:
        remove_made(made)
        raise OutputError(f"{output_dir}: cannot write frames here ({exc.strerror})") from None
    try:
        fps = float(info.fps or 25.0)
        count = 0
        total = int(round(info.duration * fps)) or None
        with tqdm(total=total, desc="extracting frames", unit="frame", disable=quiet, leave=False) as bar:
            for frame in VideoReader(info, fps):
                path = os.path.join(staging, frame_name(count, fmt))
                if not cv2.imwrite(path, frame, params):
                    raise OutputError(f"{output_dir}: cannot write frame {count} (is the disk full?)")
                count += 1
                bar.update(1)
        audio = None
        if info.has_audio:
            _extract_sound(video_path, os.path.join(staging, AUDIO_FILE))
            audio = AUDIO_FILE
        result = FramesInfo(os.path.abspath(output_dir), fps, count, info.width, info.height,
                            os.path.abspath(video_path), audio, info.colour)
        index = {"fps": fps, "frame_count": count, "width": info.width, "height": info.height,
                 "format": fmt, "pattern": f"%06d.{fmt}", "source": result.source, "audio": audio,
                 "colour": dataclasses.asdict(info.colour)}
        with disk_errors(output_dir, "the frames index"), open(os.path.join(staging, INDEX_FILE), "w",
                                                                encoding="utf-8") as f:
            json.dump(index, f, indent=2)
        for name in old:  # only now, so a failed run leaves the old frames untouched
            os.remove(os.path.join(output_dir, name))
        for name in sorted(os.listdir(staging), key=lambda n: n == INDEX_FILE):  # the index last
            os.replace(os.path.join(staging, name), os.path.join(output_dir, name))
        return result
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        remove_made(made)  # a failed run leaves no empty folder either
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _one_number(pattern: str) -> bool:
    try:
        name = pattern % 0
    except (TypeError, ValueError):
        return False
    return os.path.basename(name) == name and name not in ("", ".", "..")


class FrameFolder:
    """Reads a frame folder by index. Uses frames.json when present; a folder of numbered
    images without one needs `fps`."""

    def __init__(self, folder: str, fps: Optional[float] = None):
        if not os.path.isdir(folder):
            raise InputError(f"{folder}: no such frames folder (make one with extract_frames.py)")
        index_path = os.path.join(folder, INDEX_FILE)
        self.folder = folder
        audio = None
        source = None
        if os.path.isfile(index_path):
            index, what = jsondoc.read(index_path, "frames index"), "frames index"
            pattern = jsondoc.require(index, "pattern", str, index_path, what, check=_one_number,
                                      expected="a file name with one number field, such as %06d.png")
            count = jsondoc.require(index, "frame_count", int, index_path, what, check=lambda v: v >= 0)
            stored_fps = jsondoc.require(index, "fps", float, index_path, what, check=lambda v: 0 < v <= 1000)
            audio = jsondoc.require(index, "audio", str, index_path, what, default=None)
            source = jsondoc.require(index, "source", str, index_path, what, default=None)
            colour = Colour(**{k: v for k, v in jsondoc.require(index, "colour", dict, index_path, what, default={}).items()
                               if k in ("matrix", "primaries", "transfer", "range") and isinstance(v, str)})
            self.paths = [os.path.join(folder, pattern % i) for i in range(count)]
            missing = [p for p in self.paths if not os.path.isfile(p)]
            if missing:
                raise InputError(f"{missing[0]}: frame listed in {INDEX_FILE} is missing "
                                 f"({len(missing)} of {count} missing)")
        else:
            stored_fps, colour = None, Colour()
            self.paths = sorted(glob.glob(os.path.join(glob.escape(folder), "*")))
            self.paths = [p for p in self.paths if p.lower().endswith(IMAGE_EXTENSIONS)]
        if not self.paths:
            raise InputError(f"{folder}: holds no frames")
        self.fps = float(fps or stored_fps or 0.0)
        if self.fps <= 0:
            raise InputError(f"{folder}: has no {INDEX_FILE}, so its frame rate is unknown: give the frame rate")
        first = self.get(0)
        self.height, self.width = first.shape[:2]
        self.audio_path = os.path.join(folder, audio) if audio and os.path.isfile(os.path.join(folder, audio)) else None
        self.source = source
        self.colour = colour  # of the video the frames came from (images of their own: undeclared)

    def __len__(self) -> int:
        return len(self.paths)

    def get(self, index: int) -> np.ndarray:
        path = self.paths[index]
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"{path}: not a readable image")
        if index and image.shape[:2] != (self.height, self.width):
            raise InputError(f"{path}: frame size {image.shape[1]}x{image.shape[0]} differs from the first "
                             f"frame's {self.width}x{self.height}")
        return image

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self.get(i) for i in range(len(self)))

