"""The lip-sync pipeline: decode -> track the face -> plan the mouth from the sound ->
render the lower face -> encode and mux, streaming in frame order.

Two passes over the video: the first tracks the face (cached per input, so a second run
on the same video skips it), the second renders and encodes. Only the face track (a few
kB per second) is kept for the whole video; frames are never all held at once. When the
sound is longer than the video, the frames already decoded are spooled to a temporary
file on disk so that they can be played back and forth.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import os
import tempfile
import time
from typing import Callable, Iterable, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from . import audio as audio_lib
from . import metrics
from .errors import InputError, OutputError
from .face import (FaceTracker, TrackSettings, load_cached_track, require_faces,
                   save_cached_track, smooth_track, track_cache_path)
from .media import (DEFAULT_CRF, MediaInfo, VideoReader, VideoWriter, atomic_output, check_readable, probe,
                    read_image)
from .warp import Calibration, ExemplarPicker, MouthExemplar, WarpRenderer, calibrate, mouth_drive, target_points

log = logging.getLogger(__name__)

MODELS = ("sync", "warp", "wav2lip")  # the first is the default
LOOP_MODES = ("pingpong", "forward")
SMOOTH_SIGMA = 1.0


@dataclasses.dataclass
class Result:
    """What one lip-sync run produced."""

    outfile: str
    duration: float  # seconds of output
    frames: int
    frames_without_face: int
    fps: float
    seconds: float  # wall time of the run

    def summary(self) -> str:
        return (f"wrote {self.outfile}: {self.duration:.2f} s, {self.frames} frames at {self.fps:g} fps, "
                f"{self.frames_without_face} without a face, in {self.seconds:.1f} s")


def source_index(j: int, n_source: int, loop: str = "pingpong") -> int:
    """Which source frame plays as output frame `j` when the output outlasts the source."""
    if n_source <= 1:
        return 0
    if loop == "forward":
        return j % n_source
    period = 2 * n_source - 2
    k = j % period
    return k if k < n_source else period - k


def default_outfile(video_path: str, audio_stem: str, output_dir: str = "output") -> str:
    stem = os.path.splitext(os.path.basename(video_path))[0]
    return os.path.join(output_dir, f"{stem}_{audio_stem}.mp4")


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)
    except OSError:
        return False


def check_outfile(outfile: str, inputs: Sequence[str]) -> None:
    """Refuse an output that would overwrite an input, or that cannot be written."""
    for path in inputs:
        if path and (os.path.abspath(path) == os.path.abspath(outfile) or _same_file(path, outfile)):
            raise OutputError(f"{outfile}: the output file is also an input; choose another --outfile")
    if os.path.isdir(outfile):
        raise OutputError(f"{outfile}: the output path is a folder; give a file name such as {outfile}/out.mp4")
    folder = os.path.dirname(os.path.abspath(outfile))
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise OutputError(f"{existing}: is a file, not a folder: cannot write {outfile}")
    if not os.access(existing, os.W_OK):
        raise OutputError(f"{existing}: output folder is not writable")


class FrameSource:
    """Frames of the input by index, in playing order, without holding them all.

    Sequential indices come straight from the decoder; when `spool` is set, every decoded
    frame is also appended to a temporary file so that earlier indices can be read back.
    """

    def __init__(self, info: MediaInfo, fps: float, spool: bool):
        self.info = info
        if info.is_image:
            self._still = read_image(info.path)
            self._iter = None
        else:
            self._still = None
            self._iter = iter(VideoReader(info, fps))
        self._decoded = 0
        self._last: Optional[np.ndarray] = None
        self._spool = tempfile.TemporaryFile(prefix="lipsync-frames-") if spool and self._still is None else None
        self._frame_bytes = info.width * info.height * 3

    def get(self, index: int) -> Optional[np.ndarray]:
        if self._still is not None:
            return self._still
        while self._decoded <= index:
            frame = next(self._iter, None)
            if frame is None:
                return self._read_back(index) if index < self._decoded else self._last
            if self._spool is not None:
                self._spool.write(frame.data)
            self._last = frame
            self._decoded += 1
        if index == self._decoded - 1:
            return self._last
        return self._read_back(index)

    def _read_back(self, index: int) -> np.ndarray:
        if self._spool is None:
            raise RuntimeError("frame requested out of order without a spool")
        self._spool.seek(index * self._frame_bytes)
        buf = self._spool.read(self._frame_bytes)
        self._spool.seek(0, os.SEEK_END)
        return np.frombuffer(buf, np.uint8).reshape(self.info.height, self.info.width, 3)

    def close(self) -> None:
        if self._iter is not None:
            self._iter.close()
        if self._spool is not None:
            self._spool.close()


@dataclasses.dataclass
class FaceTrack:
    landmarks: np.ndarray  # (n, 68, 2) float32, NaN where no face
    exemplar: Optional[MouthExemplar]


def _track_cache_save(path: str, track: FaceTrack) -> None:
    extra = {}
    if track.exemplar is not None:
        extra = dict(exemplar_image=track.exemplar.image, exemplar_inner=track.exemplar.inner,
                     exemplar_opening=np.float32(track.exemplar.opening))
    save_cached_track(path, track.landmarks, **extra)


def _track_cache_load(path: str) -> Optional[FaceTrack]:
    data = load_cached_track(path)
    if data is None:
        return None
    exemplar = None
    if "exemplar_image" in data:
        exemplar = MouthExemplar(data["exemplar_image"], data["exemplar_inner"], float(data["exemplar_opening"]))
    return FaceTrack(data["landmarks"], exemplar)


def track_face(info: MediaInfo, fps: float, settings: TrackSettings, *, use_cache: bool = True,
               quiet: bool = False) -> FaceTrack:
    """Face landmarks for every frame of the input (one frame for a still image)."""
    cache = track_cache_path(info.path, settings, fps) if use_cache and not info.is_image else None
    if cache and os.path.exists(cache):
        cached = _track_cache_load(cache)
        if cached is not None:
            log.info("face track from cache %s", cache)
            return cached
    frames = [read_image(info.path)] if info.is_image else VideoReader(info, fps)
    total = 1 if info.is_image else int(round(info.duration * fps)) or None
    track = track_frames(frames, settings, total=total, quiet=quiet or info.is_image)
    if cache:
        _track_cache_save(cache, track)
    return track


def track_frames(frames: Iterable[np.ndarray], settings: TrackSettings, *, total: Optional[int] = None,
                 quiet: bool = False) -> FaceTrack:
    """Face landmarks for every frame of an iterable of BGR frames."""
    tracker = FaceTracker(settings)
    picker = ExemplarPicker()
    rows = []
    with tqdm(total=total, desc="tracking face", unit="frame", disable=quiet, leave=False) as bar:
        for frame in frames:
            points = tracker(frame)
            picker.offer(frame, points)
            rows.append(points if points is not None else np.full((68, 2), np.nan, np.float32))
            bar.update(1)
    return FaceTrack(np.stack(rows), picker.best())


def plan_openings(wav: np.ndarray, fps: float, n_frames: int, calibration: Calibration) -> np.ndarray:
    """Wanted inner-lip opening (inter-ocular units) for each output frame."""
    return calibration.opening(mouth_drive(wav, fps, n_frames))


def prepare_audio(audio_path: Optional[str], text: Optional[str], workdir: str, voice: Optional[str],
                  rate: Optional[int]) -> Tuple[str, str]:
    """Returns (path of the sound to sync to, stem for the output name); speaks `text` if given."""
    if text is not None:
        from .tts import synthesize

        path = os.path.join(workdir, "speech.wav")
        synthesize(text, path, voice=voice, rate=rate)
        return path, "tts"
    if not audio_path:
        raise InputError("no sound given: pass --audio_path FILE or --text \"...\"")
    check_readable(audio_path, "audio")
    return audio_path, os.path.splitext(os.path.basename(audio_path))[0]


def lip_sync(*, video_path: str, audio_path: Optional[str] = None, text: Optional[str] = None,
             outfile: Optional[str] = None, output_dir: str = "output", model: str = "sync", fps: float = 25.0,
             detector: str = "hog", face_index: Optional[int] = None,
             box: Optional[Tuple[int, int, int, int]] = None, pads: Tuple[int, int, int, int] = (0, 0, 0, 0),
             nosmooth: bool = False, use_cache: bool = True, loop: str = "pingpong", crf: int = DEFAULT_CRF,
             voice: Optional[str] = None, rate: Optional[int] = None, personalize: str = "auto",
             personalize_seconds: float = 120.0, checkpoint_path: Optional[str] = None,
             device: str = "auto", batch_size: int = 16, quiet: bool = False) -> Result:
    """Makes the face in `video_path` (a video or a photo) speak `audio_path` (or `text`).

    Writes an H.264/AAC video as long as the sound, at the source's frame size and rate
    (`fps` for a photo), to `outfile` (default output/<video stem>_<audio stem>.mp4).
    `model` "sync" (default) is the TensorFlow sound-to-shape model (`lipsync.sync`),
    personalized on the input's own speech per `personalize` ("auto", "on", "off") within
    `personalize_seconds`; "warp" is the training-free loudness-driven renderer; "wav2lip"
    runs the official Wav2Lip generator from `checkpoint_path` (PyTorch, on `device`).
    Raises a LipSyncError subclass for bad input; leaves no output file on failure.
    """
    start = time.time()
    if model not in MODELS:
        raise InputError(f"unknown model {model!r} (choose from {', '.join(MODELS)})")
    if loop not in LOOP_MODES:
        raise InputError(f"unknown loop mode {loop!r} (choose from {', '.join(LOOP_MODES)})")
    if text is not None and not text.strip():
        raise InputError("--text is empty: give the words to speak")
    info = probe(video_path)
    if not info.has_video:
        raise InputError(f"{video_path}: has no video stream (an audio file given as the video?)")
    with tempfile.TemporaryDirectory(prefix="lipsync-") as workdir:
        sound, audio_stem = prepare_audio(audio_path, text, workdir, voice, rate)
        outfile = outfile or default_outfile(video_path, audio_stem, output_dir)
        check_outfile(outfile, [video_path, audio_path])
        wav = audio_lib.load_audio(sound)
        rate_out = float(fps) if info.is_image else float(info.fps or fps)
        if model == "wav2lip":  # before tracking: a missing checkpoint or PyTorch fails at once
            render = wav2lip_renderer(wav, rate_out, checkpoint_path=checkpoint_path, device=device, pads=pads)
        settings = TrackSettings(detector=detector, face_index=face_index, box=box)
        track = track_face(info, rate_out, settings, use_cache=use_cache, quiet=quiet)
        require_faces(track.landmarks, video_path)
        n_source = len(track.landmarks)
        n_out = audio_lib.frame_count(len(wav), rate_out)
        points_all = track.landmarks if nosmooth else smooth_track(track.landmarks, SMOOTH_SIGMA)
        calibration = calibrate(metrics.openings(track.landmarks))
        if model == "sync":
            from . import sync

            person = sync.prepare_person(track=points_all, video_path=video_path, is_image=info.is_image,
                                         has_audio=info.has_audio, fps=rate_out,
                                         span=(calibration.rest, calibration.peak),
                                         mode=personalize, budget_s=personalize_seconds,
                                         checkpoint_path=checkpoint_path, use_cache=use_cache, quiet=quiet)
            mouths = sync.plan_mouths(person, wav, rate_out, n_out)
            render = warp_renderer(track.exemplar, pads, lambda j, p: sync.target_landmarks(p, mouths[j], person.rest))
        elif model == "warp":
            openings = plan_openings(wav, rate_out, n_out, calibration)
            render = warp_renderer(track.exemplar, pads, lambda j, p: target_points(p, float(openings[j])))
        log.info("calibration %s, exemplar %s", calibration, "own" if track.exemplar is not None else "synthetic")
        source = FrameSource(info, rate_out, spool=n_out > n_source)
        try:
            without_face = write_video(outfile, frames=source.get, track=points_all, n_out=n_out,
                                       size=(info.width, info.height), fps=rate_out, sound=sound, render=render,
                                       loop=loop, crf=crf, batch_size=batch_size, source_name=video_path,
                                       quiet=quiet)
        finally:
            source.close()
    return Result(outfile, n_out / rate_out, n_out, without_face, rate_out, time.time() - start)


Renderer = Callable[[List[int], List[np.ndarray], List[np.ndarray]], List[np.ndarray]]


def write_video(outfile: str, *, frames: Callable[[int], Optional[np.ndarray]], track: np.ndarray, n_out: int,
                size: Tuple[int, int], fps: float, sound: str, render: Renderer, loop: str, crf: int,
                batch_size: int, source_name: str, quiet: bool) -> int:
    """Renders and encodes `n_out` frames to `outfile` (atomically), muxed with `sound`.

    `frames(i)` gives source frame i and `track[i]` its landmarks (NaN: no face, the frame
    is copied). `render(js, frames, points)` turns a batch of output frames with a face into
    new frames. Returns the number of output frames without a face.
    """
    n_source = len(track)
    without_face = 0
    with atomic_output(outfile) as tmp, \
            VideoWriter(tmp, size[0], size[1], fps, audio_path=sound, crf=crf) as writer, \
            tqdm(total=n_out, desc="lip-syncing", unit="frame", disable=quiet, leave=False) as bar:
        for first in range(0, n_out, batch_size):
            batch = []
            for j in range(first, min(n_out, first + batch_size)):
                idx = source_index(j, n_source, loop)
                frame = frames(idx)
                if frame is None:
                    raise InputError(f"{source_name}: the video ended early while decoding")
                batch.append((j, frame, track[min(idx, n_source - 1)]))
            with_face = [k for k, (_, _, p) in enumerate(batch) if not np.isnan(p[0, 0])]
            without_face += len(batch) - len(with_face)
            rendered = render([batch[k][0] for k in with_face], [batch[k][1] for k in with_face],
                              [batch[k][2] for k in with_face]) if with_face else []
            out = [frame for _, frame, _ in batch]
            for k, new in zip(with_face, rendered):
                out[k] = new
            for frame in out:
                writer.write(frame)
            bar.update(len(out))
    return without_face


def warp_renderer(exemplar: Optional[MouthExemplar], pads: Sequence[int],
                  target: Callable[[int, np.ndarray], np.ndarray]) -> Renderer:
    """A batch renderer moving each output frame j's landmarks to `target(j, points)` with the mesh warp."""
    warper = WarpRenderer(exemplar, pads=pads)
    return lambda js, frames, points: [warper.render_points(f, p, target(j, p)) for j, f, p in zip(js, frames, points)]


@functools.lru_cache(maxsize=1)
def _load_wav2lip(path: str, device: str, stamp):
    """The generator, loaded once per process while the file is unchanged (`stamp`)."""
    from .wav2lip import load_wav2lip

    return load_wav2lip(path, device=device)


def wav2lip_renderer(wav: np.ndarray, fps: float, *, checkpoint_path: Optional[str], device: str,
                     pads: Sequence[int]) -> Renderer:
    """A batch renderer running the Wav2Lip generator on each frame's mel window."""
    from .wav2lip import DEFAULT_CHECKPOINT, Wav2LipRenderer

    path = checkpoint_path or DEFAULT_CHECKPOINT
    stamp = (os.path.getsize(path), os.stat(path).st_mtime_ns) if os.path.isfile(path) else None
    renderer = Wav2LipRenderer(_load_wav2lip(path, device, stamp), pads=pads)
    mel = audio_lib.melspectrogram(wav)
    return lambda js, frames, points: renderer.render(frames, points, audio_lib.mel_windows_at(mel, fps, js))


def lip_sync_frames(*, frames_dir: str, audio_path: str, outfile: Optional[str] = None, output_dir: str = "output",
                    checkpoint_path: Optional[str] = None, fps: Optional[float] = None, batch_size: int = 16,
                    pads: Sequence[int] = (0, 10, 0, 0), resize_factor: int = 1, nosmooth: bool = False,
                    box: Optional[Tuple[int, int, int, int]] = None, detector: str = "hog", device: str = "auto",
                    loop: str = "pingpong", crf: int = DEFAULT_CRF, quiet: bool = False) -> Result:
    """The Wav2Lip path over a frame folder (see `lipsync.frames`): the face in the frames
    speaks `audio_path`. fps comes from the folder's frames.json unless given. Frames are
    shrunk by `resize_factor` first (a smaller, faster output), as in Wav2Lip.
    Writes output/<folder name>_<audio stem>.mp4 unless `outfile` is given.
    """
    from .frames import FrameFolder

    start = time.time()
    if resize_factor < 1:
        raise InputError(f"--resize_factor {resize_factor}: must be 1 or more")
    if batch_size < 1:
        raise InputError(f"--batch_size {batch_size}: must be 1 or more")
    if loop not in LOOP_MODES:
        raise InputError(f"unknown loop mode {loop!r} (choose from {', '.join(LOOP_MODES)})")
    folder = FrameFolder(frames_dir, fps)
    check_readable(audio_path, "audio")
    stem = os.path.splitext(os.path.basename(audio_path))[0]
    outfile = outfile or default_outfile(os.path.basename(os.path.normpath(frames_dir)), stem, output_dir)
    check_outfile(outfile, [audio_path, folder.audio_path])
    wav = audio_lib.load_audio(audio_path)
    width, height = folder.width // resize_factor // 2 * 2, folder.height // resize_factor // 2 * 2

    def frame(i: int) -> np.ndarray:
        image = folder.get(i)
        if resize_factor == 1 and image.shape[1] == width and image.shape[0] == height:
            return image
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)

    render = wav2lip_renderer(wav, folder.fps, checkpoint_path=checkpoint_path, device=device, pads=pads)
    settings = TrackSettings(detector=detector, box=box)
    track = track_frames((frame(i) for i in range(len(folder))), settings, total=len(folder), quiet=quiet)
    require_faces(track.landmarks, frames_dir)
    points_all = track.landmarks if nosmooth else smooth_track(track.landmarks, SMOOTH_SIGMA)
    n_out = audio_lib.frame_count(len(wav), folder.fps)
    without_face = write_video(outfile, frames=frame, track=points_all, n_out=n_out, size=(width, height),
                               fps=folder.fps, sound=audio_path, render=render, loop=loop, crf=crf,
                               batch_size=batch_size, source_name=frames_dir, quiet=quiet)
    return Result(outfile, n_out / folder.fps, n_out, without_face, folder.fps, time.time() - start)
