"""The lip-sync pipeline: check everything -> track the face -> plan the mouth from the sound
-> render the lower face -> encode and mux, streaming in frame order.

Every check that can fail (options, inputs, output folder, the generator's weights and
backends) runs before the first frame is decoded. Then two passes over the video: the first
tracks the face (cached per input, so a second run on the same video skips it), the second
renders and encodes. Only the face track (a few kB per second) is kept for the whole video.
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from contextlib import nullcontext
from typing import Callable, ContextManager, Optional, Sequence, Tuple

import cv2
import numpy as np

from . import generators
from .errors import InputError, OutputError
from .face.detect import DETECTORS, Box
from .face.track import FaceTrack, TrackSettings, require_faces, track_frames, track_media
from .generators.base import PERSONALIZE_MODES, Generator, GeneratorSettings, Source
from .io import audio as audio_lib
from .io.media import DEFAULT_CRF, Colour, check_readable, probe
from .progress import CancelCheck, Progress, ProgressCallback
from .render.alive import AliveRenderer
from .render.loop import LOOP_MODES, FrameSource, render_video
from .render.paste import DEFAULT_PADS as WAV2LIP_PADS

MAX_FPS = 120.0


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


def default_outfile(video_path: str, audio_stem: str, output_dir: str = "output") -> str:
    stem = os.path.splitext(os.path.basename(video_path))[0]
    return os.path.join(output_dir, f"{stem}_{audio_stem}.mp4")


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)
    except OSError:
        return False


def check_outfile(outfile: str, inputs: Sequence[Optional[str]]) -> None:
    """Refuse an output that would overwrite an input, or that cannot be written."""
    for path in inputs:
        if path and (os.path.abspath(path) == os.path.abspath(outfile) or _same_file(path, outfile)):
            raise OutputError(f"{outfile}: the output file is also an input; choose another output file")
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


def check_options(*, model: Optional[str] = None, loop: str = "pingpong", crf: int = DEFAULT_CRF,
                  fps: Optional[float] = 25.0, batch_size: int = 16, face_index: Optional[int] = None,
                  box: Optional[Box] = None, pads: Sequence[int] = (0, 0, 0, 0), detector: str = "hog",
                  personalize: str = "auto", personalize_seconds: float = 120.0) -> None:
    """InputError naming the first option with a bad value."""
    if model is not None:
        generators.require(model)
    if personalize not in PERSONALIZE_MODES:
        raise InputError(f"unknown personalize mode {personalize!r} (choose from {', '.join(PERSONALIZE_MODES)})")
    if loop not in LOOP_MODES:
        raise InputError(f"unknown loop mode {loop!r} (choose from {', '.join(LOOP_MODES)})")
    if not 0 <= crf <= 51:
        raise InputError(f"crf {crf}: must be between 0 and 51")
    if fps is not None and not 0 < fps <= MAX_FPS:
        raise InputError(f"fps {fps:g}: must be more than 0 and at most {MAX_FPS:g}")
    if batch_size < 1:
        raise InputError(f"batch size {batch_size}: must be 1 or more")
    if face_index is not None and face_index < 0:
        raise InputError(f"face index {face_index}: must be 0 or more")
    if box is not None and (len(box) != 4 or box[2] <= box[0] or box[3] <= box[1] or min(box) < 0):
        raise InputError(f"face box {tuple(box)}: must be (left, top, right, bottom) pixels with right > left "
                         "and bottom > top")
    if len(pads) != 4:
        raise InputError(f"pads {tuple(pads)}: give four numbers (top, bottom, left, right)")
    if detector not in DETECTORS:
        raise InputError(f"unknown face detector {detector!r} (choose from {', '.join(DETECTORS)})")
    if personalize_seconds <= 0:
        raise InputError(f"personalization length {personalize_seconds:g} s: must be more than 0")


def make_generator(model: str, *, pads: Sequence[int] = (0, 0, 0, 0), checkpoint_path: Optional[str] = None,
                   device: str = "auto", personalize: str = "auto", personalize_seconds: float = 120.0,
                   use_cache: bool = True) -> Generator:
    """The generator registered as `model` with these settings, its own checks passed (weights
    present and loaded once per process)."""
    generator = generators.get(model)(GeneratorSettings(
        pads=tuple(pads), checkpoint_path=checkpoint_path, device=device, personalize=personalize,
        personalize_seconds=personalize_seconds, use_cache=use_cache))
    generator.check()
    return generator


def prepare_audio(audio_path: Optional[str], text: Optional[str], workdir: str, voice: Optional[str],
                  rate: Optional[int]) -> str:
    """The path of the sound to sync to: `audio_path`, or `text` spoken offline into `workdir`."""
    if text is not None:
        from .io.tts import synthesize

        path = os.path.join(workdir, "speech.wav")
        synthesize(text, path, voice=voice, rate=rate)
        return path
    return audio_path


def lip_sync(*, video_path: str, audio_path: Optional[str] = None, text: Optional[str] = None,
             outfile: Optional[str] = None, output_dir: str = "output", model: str = "sync", fps: float = 25.0,
             detector: str = "hog", face_index: Optional[int] = None, box: Optional[Box] = None,
             pads: Tuple[int, int, int, int] = (0, 0, 0, 0), nosmooth: bool = False, use_cache: bool = True,
             loop: str = "pingpong", crf: int = DEFAULT_CRF, voice: Optional[str] = None, rate: Optional[int] = None,
             personalize: str = "auto", personalize_seconds: float = 120.0, checkpoint_path: Optional[str] = None,
             device: str = "auto", batch_size: int = 16, still: bool = False, quiet: bool = False,
             progress: Optional[ProgressCallback] = None, cancel: Optional[CancelCheck] = None) -> Result:
    """Makes the face in `video_path` (a video or a photo) speak `audio_path` (or `text`).

    Writes an H.264/AAC video as long as the sound, at the source's frame size and rate
    (`fps` for a photo), to `outfile` (default <output_dir>/<video stem>_<audio stem>.mp4).
    `model` names a generator of `lipsync.generators` ("sync", the default, is the TensorFlow
    sound-to-mouth model, personalized on the input's own speech per `personalize` ("auto",
    "on", "off") from at most `personalize_seconds` of its sound; "warp" is training-free; "wav2lip" runs the
    official Wav2Lip generator from `checkpoint_path` with PyTorch on `device`).
    A photo comes alive (blinks, a slight head motion) unless `still`.
    `box` fixes the face box (left, top, right, bottom) instead of detecting it; `pads`
    (top, bottom, left, right) widens the region that may change. `progress(stage, done,
    total)` is told of each step; `cancel()` returning True stops the run (Cancelled).
    Raises a LipSyncError subclass for bad input, before any long work where it can be
    known; leaves no output file on failure.
    """
    start = time.time()
    reporter = Progress(quiet, progress, cancel)
    fps = 25.0 if fps is None else fps
    check_options(model=model, loop=loop, crf=crf, fps=fps, batch_size=batch_size, face_index=face_index, box=box,
                  pads=pads, detector=detector, personalize=personalize, personalize_seconds=personalize_seconds)
    if text is not None and not text.strip():
        raise InputError("the text to speak is empty")
    if text is None and not audio_path:
        raise InputError("no sound given: give an audio file or a text to speak")
    info = probe(video_path)
    if not info.has_video:
        raise InputError(f"{video_path}: has no video stream (an audio file given as the video?)")
    if text is None:
        check_readable(audio_path, "audio")
    audio_stem = "tts" if text is not None else os.path.splitext(os.path.basename(audio_path))[0]
    outfile = outfile or default_outfile(video_path, audio_stem, output_dir)
    check_outfile(outfile, [video_path, audio_path])
    generator = make_generator(model, pads=pads, checkpoint_path=checkpoint_path, device=device,
                               personalize=personalize, personalize_seconds=personalize_seconds, use_cache=use_cache)
    with tempfile.TemporaryDirectory(prefix="lipsync-") as workdir:
        sound = prepare_audio(audio_path, text, workdir, voice, rate)
        wav = audio_lib.load_audio(sound)
        rate_out = float(fps) if info.is_image else float(info.fps or fps)
        settings = TrackSettings(detector=detector, face_index=face_index, box=box)
        track = track_media(info, rate_out, settings, use_cache=use_cache, progress=reporter)
        source = Source(video_path, info.is_image, info.has_audio, rate_out, track,
                        track if nosmooth else track.smoothed())
        return _dub(generator, source, wav, sound=sound, outfile=outfile,
                    frames=lambda n_out: FrameSource(info, rate_out, spool=n_out > len(track)),
                    size=(info.width, info.height), colour=info.colour, loop=loop, crf=crf, batch_size=batch_size,
                    progress=reporter, start=start, alive=info.is_image and not still)


def _dub(generator: Generator, source: Source, wav: np.ndarray, *, sound: str, outfile: str,
         frames: Callable[[int], ContextManager[Callable[[int], Optional[np.ndarray]]]], size: Tuple[int, int],
         colour: Optional[Colour], loop: str, crf: int, batch_size: int, progress: Progress, start: float,
         alive: bool = False) -> Result:
    """The common end of both entry points: the generator's stages plan every output frame's
    mouth from `wav` and render them over the source. `frames(n_out)` opens the source frames
    (a context giving frame i by index); `alive`: add blinks and head motion (a photo)."""
    require_faces(source.track, source.path)
    sound_stage, renderer = generator.stages(source, progress)
    n_out = audio_lib.frame_count(len(wav), source.fps)
    mouths = sound_stage.plan(wav, source.fps, n_out)
    if alive:
        renderer = AliveRenderer(renderer, source.fps, n_out / source.fps)
    with frames(n_out) as frame:
        without_face = render_video(outfile, frames=frame, faces=source.smooth.landmarks, mouths=mouths,
                                    renderer=renderer, size=size, fps=source.fps, sound=sound, loop=loop, crf=crf,
                                    batch_size=batch_size, source_name=source.path, progress=progress, colour=colour)
    return Result(outfile, n_out / source.fps, n_out, without_face, source.fps, time.time() - start)


def lip_sync_frames(*, frames_dir: str, audio_path: str, outfile: Optional[str] = None, output_dir: str = "output",
                    checkpoint_path: Optional[str] = None, fps: Optional[float] = None, batch_size: int = 16,
                    pads: Sequence[int] = WAV2LIP_PADS, resize_factor: int = 1, nosmooth: bool = False,
                    box: Optional[Box] = None, detector: str = "hog", device: str = "auto",
                    loop: str = "pingpong", crf: int = DEFAULT_CRF, quiet: bool = False,
                    progress: Optional[ProgressCallback] = None, cancel: Optional[CancelCheck] = None) -> Result:
    """The Wav2Lip path over a frame folder (see `lipsync.io.frames`): the face in the frames
    speaks `audio_path`. fps comes from the folder's frames.json unless given. Frames are
    shrunk by `resize_factor` first (a smaller, faster output), as in Wav2Lip. `box` is
    (left, top, right, bottom). Writes <output_dir>/<folder name>_<audio stem>.mp4 unless
    `outfile` is given.
    """
    from .io.frames import FrameFolder

    start = time.time()
    reporter = Progress(quiet, progress, cancel)
    if resize_factor < 1:
        raise InputError(f"resize factor {resize_factor}: must be 1 or more")
    check_options(loop=loop, crf=crf, fps=fps, batch_size=batch_size, box=box, pads=pads, detector=detector)
    folder = FrameFolder(frames_dir, fps)
    check_readable(audio_path, "audio")
    stem = os.path.splitext(os.path.basename(audio_path))[0]
    outfile = outfile or default_outfile(os.path.basename(os.path.normpath(frames_dir)), stem, output_dir)
    check_outfile(outfile, [audio_path, folder.audio_path])
    generator = make_generator("wav2lip", pads=pads, checkpoint_path=checkpoint_path, device=device)
    wav = audio_lib.load_audio(audio_path)
    width, height = folder.width // resize_factor // 2 * 2, folder.height // resize_factor // 2 * 2

    def frame(i: int):
        image = folder.get(i)
        if resize_factor == 1 and image.shape[1] == width and image.shape[0] == height:
            return image
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)

    settings = TrackSettings(detector=detector, box=box)
    track: FaceTrack = track_frames((frame(i) for i in range(len(folder))), settings, folder.fps,
                                    total=len(folder), progress=reporter)
    source = Source(frames_dir, False, False, folder.fps, track, track if nosmooth else track.smoothed())
    return _dub(generator, source, wav, sound=audio_path, outfile=outfile, frames=lambda n_out: nullcontext(frame),
                size=(width, height), colour=folder.colour, loop=loop, crf=crf, batch_size=batch_size,
                progress=reporter, start=start)
