"""The lip-sync pipeline: check everything -> track the face -> plan the mouth from the sound
-> render the lower face -> encode and mux, streaming in frame order.

Every check that can fail (options, inputs, output folder, the generator's weights and
backends) runs before the first frame is decoded. Then two passes over the video: the first
tracks the face (cached per input, so a second run on the same video skips it), the second
renders and encodes. Only the face track (a few kB per second) is kept for the whole video.
"""
from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import time
from contextlib import nullcontext
from typing import Any, Callable, ContextManager, Dict, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from . import generators
from .errors import InputError, NoFaceError
from .face.detect import Box
from .face.track import FaceTrack, TrackSettings, require_faces, track_frames, track_media
from .generators.base import Generator, Source
from .generators.options import GeneratorOptions, Wav2LipOptions
from .io import audio as audio_lib
from .io.features import mouth_drive
from .io.files import NAME_MAX, check_output, cut, shorten, temp_dir
from .io.media import (DEFAULT_CRF, MAX_SIDE, VIDEO_OUTPUTS, Colour, MediaInfo, VideoReader, check_readable,
                       fit_size, probe, read_image)
from .io.realtime import STREAM_CHUNK_S
from .io.source import FrameSource, replayed, source_index
from .io.tts import require_sound
from .progress import CancelCheck, Progress, ProgressCallback
from .render.alive import AliveRenderer
from .render.loop import render_video
from .render.paste import DEFAULT_PADS as WAV2LIP_PADS
from .run_options import RunOptions

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Result:
    """What one lip-sync run produced."""

    outfile: str
    duration: float  # seconds of output
    frames: int
    frames_without_face: int
    fps: float
    seconds: float  # wall time of the run
    replaced: bool = False  # a file was there before, and the output replaced it
    scaled_from: Optional[Tuple[int, int]] = None  # the input's frame size, when it was scaled down to fit

    def summary(self) -> str:
        scaled = f", scaled down from {self.scaled_from[0]}x{self.scaled_from[1]}" if self.scaled_from else ""
        return (f"{'replaced' if self.replaced else 'wrote'} {self.outfile}: {self.duration:.2f} s, {self.frames} "
                f"frames at {self.fps:g} fps{scaled}, {self.frames_without_face} without a face, in {self.seconds:.1f} s")


def default_outfile(video_path: str, audio_stem: str, output_dir: str = "output") -> str:
    """<output_dir>/<video stem>_<audio stem>.mp4, the stems shortened to a name the file system takes."""
    stem = os.path.splitext(os.path.basename(video_path))[0]
    return os.path.join(output_dir, shorten(stem, NAME_MAX, keep=f"_{cut(audio_stem, 60)}.mp4"))


def check_outfile(outfile: str, inputs: Sequence[Optional[str]]) -> bool:
    """Refuse an output video that would overwrite an input, or that cannot be written (see
    files.check_output). Returns whether it replaces a file."""
    return check_output(outfile, "output", extensions=VIDEO_OUTPUTS, inputs=inputs)


def _scaled(box: Optional[Box], factor: float) -> Optional[Box]:
    return box and tuple(int(v * factor) for v in box)


def media_tracking(info: MediaInfo, fps: float, detector: str, face_index: Optional[int],
                   box: Optional[Box]) -> Tuple[float, TrackSettings]:
    """The output frame rate of a probed input (the video's own; `fps` for a photo) and its
    tracking settings."""
    rate_out = float(fps) if info.is_image else float(info.fps or fps)
    return rate_out, TrackSettings(detector=detector, face_index=face_index, box=box)


def check_box(box: Optional[Box], width: int, height: int, source: str) -> None:
    """InputError unless the face box lies inside the frame."""
    if box is not None and (box[2] > width or box[3] > height):
        raise InputError(f"{source}: the face box (left, top, right, bottom) {tuple(box)} does not fit in the "
                         f"{width}x{height} frame")


def checked_media(video_path: str, box: Optional[Box]) -> Tuple[MediaInfo, Optional[Box]]:
    """The probed video or photo as the toolkit reads it (scaled down to fit) and the face box
    in its pixels; InputError for a file that is not a video or photo, or a box outside the frame."""
    info = probe(video_path)
    if not info.has_video:
        raise InputError(f"{video_path}: has no video stream (an audio file given as the video?)")
    check_box(box, info.width, info.height, video_path)
    info = info.fitted()
    if info.stored_size:
        log.warning("%s: %dx%d frames are larger than %d pixels on a side; scaled down to %dx%d", video_path,
                    *info.stored_size, MAX_SIDE, info.width, info.height)
        box = _scaled(box, info.width / info.stored_size[0])
    return info, box


def checked_inputs(video_path: str, audio_path: Optional[str], text: Optional[str],
                    box: Optional[Box]) -> Tuple[MediaInfo, Optional[Box]]:
    """`checked_media`, after checking that there is a sound (a readable file, or a text)."""
    require_sound(audio_path, text, "give an audio file or a text to speak")
    info, box = checked_media(video_path, box)
    if text is None:
        check_readable(audio_path, "audio")
    return info, box


def option_names() -> Tuple[str, ...]:
    """Every option keyword `lip_sync` takes: the run's and every registered generator's."""
    names = list(RunOptions.names())
    for model in generators.names():
        names += [n for n in generators.options_class(model).names() if n not in names]
    return tuple(names)


def run_options(model: str, options: Optional[RunOptions] = None, model_options: Optional[GeneratorOptions] = None,
                keywords: Optional[Dict[str, Any]] = None,
                caller: str = "lip_sync") -> Tuple[RunOptions, GeneratorOptions]:
    """The typed options of one run of `model`: `options` and `model_options` as given, with the
    option `keywords` (fps=..., personalize=...: `lip_sync`'s keywords) set on top; a keyword of
    another generator's options is ignored. InputError naming the first bad value; TypeError for a
    keyword that is no option."""
    generators.require(model)
    keywords = dict(keywords or {})
    unknown = sorted(set(keywords) - set(option_names()))
    if unknown:
        raise TypeError(f"{caller}() got an unexpected keyword argument {unknown[0]!r}")
    run_keys = {k: v for k, v in keywords.items() if k in RunOptions.names()}
    run = RunOptions(**run_keys) if options is None else options.replace(**run_keys) if run_keys else options
    kind = generators.options_class(model)
    own_keys = {k: v for k, v in keywords.items() if k in kind.names()}
    if type(model_options) is kind:
        mine = model_options.replace(**own_keys) if own_keys else model_options
    else:  # made here, or another generator's options: the fields this model's have in common
        mine = kind.pick({**(model_options.as_dict() if model_options is not None else {}), **own_keys})
    if run.lookahead is not None:
        generators.require_stream(model, "look-ahead")
    return run, mine


def make_generator(model: str, model_options: Optional[GeneratorOptions] = None) -> Generator:
    """The generator registered as `model` with its options, its own checks passed (weights
    present and loaded once per process)."""
    generator = generators.get(model)(model_options or generators.options_class(model)())
    generator.check()
    return generator


def prepare_audio(audio_path: Optional[str], text: Optional[str], workdir: str, voice: Optional[str],
                  rate: Optional[int], progress: Progress = Progress(quiet=True)) -> str:
    """The path of the sound to sync to: `audio_path`, or `text` spoken offline into `workdir`."""
    if text is not None:
        from .io.tts import synthesize

        path = os.path.join(workdir, "speech.wav")
        with progress.stage("speaking", 1, unit="text") as bar:
            synthesize(text, path, voice=voice, rate=rate)
            bar.update(1)
        return path
    return audio_path


Tracks = Union[FaceTrack, Sequence[FaceTrack]]  # a face track, or one per person


def given_track(track: Tracks, info: MediaInfo, rate: float, first: Optional[int] = None) -> FaceTrack:
    """The face track handed to a run (`lip_sync(track=...)`): one track, or a list of one
    track per person (one person is drawn for now); InputError for a track that does not fit
    the input (or its `first` frames: then a longer track is cut to them)."""
    tracks = [track] if isinstance(track, FaceTrack) else list(track)
    if len(tracks) != 1:
        raise InputError(f"{info.path}: {len(tracks)} face tracks given: give one (one person's mouth is drawn)")
    track = tracks[0]
    expected = 1 if info.is_image else int(round((info.duration or 0) * rate)) or len(track)
    if first is not None and not info.is_image and first < expected:
        expected, track = first, track.head(first)
    if not len(track) or abs(len(track) - expected) > max(5, 0.1 * expected):
        raise InputError(f"{info.path}: the face track given has {len(track)} frames, the input about {expected}")
    return track


def lip_sync(*, video_path: str, audio_path: Optional[str] = None, text: Optional[str] = None,
             outfile: Optional[str] = None, output_dir: str = "output", model: str = "sync",
             options: Optional[RunOptions] = None, model_options: Optional[GeneratorOptions] = None,
             track: Optional[Tracks] = None, quiet: bool = False, progress: Optional[ProgressCallback] = None,
             cancel: Optional[CancelCheck] = None, **keywords: Any) -> Result:
    """Makes the face in `video_path` (a video or a photo) speak `audio_path` (or `text`).

    Writes an H.264/AAC video as long as the sound, at the source's frame size and rate
    (`fps` for a photo), to `outfile` (default <output_dir>/<video stem>_<audio stem>.mp4).
    `model` names a generator of `lipsync.generators` ("sync", the default, is the TensorFlow
    sound-to-mouth model; "warp" is training-free; "wav2lip" runs the official Wav2Lip
    generator from a checkpoint the user brings).

    Options: `options` (`RunOptions`: fps, detector, face_index, box, nosmooth, still, loop,
    crf, batch_size, voice, rate, lookahead) and `model_options` (the model's options class,
    `lipsync.generators.options`: pads, use_cache, and for "sync" personalize,
    personalize_seconds, checkpoint_path; for "wav2lip" checkpoint_path, device), or any of
    their fields as keywords (`lip_sync(..., fps=30, personalize="off")`). `box` is (left, top,
    right, bottom) pixels; `lookahead` (seconds; a model that can stream) plans the mouth as
    live mode does. `track`: the input's face track (`FaceTrack`, or a list of one per person),
    made elsewhere (a Ray worker, live mode), instead of tracking or the cache.

    `progress(stage, done, total)` is told of each step; `cancel()` returning True stops the
    run (Cancelled). Raises a LipSyncError subclass for bad input, before any long work where
    it can be known; leaves no output file on failure.
    """
    start = time.time()
    reporter = Progress(quiet, progress, cancel)
    run, mine = run_options(model, options, model_options, keywords)
    fps = 25.0 if run.fps is None else run.fps
    info, box = checked_inputs(video_path, audio_path, text, run.box)
    audio_stem = "tts" if text is not None else os.path.splitext(os.path.basename(audio_path))[0]
    outfile = outfile or default_outfile(video_path, audio_stem, output_dir)
    replaces = check_outfile(outfile, [video_path, audio_path])
    generator = make_generator(model, mine)
    with temp_dir("run") as workdir:
        sound = prepare_audio(audio_path, text, workdir, run.voice, run.rate, reporter)
        wav = audio_lib.load_audio(sound)
        rate_out, settings = media_tracking(info, fps, run.detector, run.face_index, box)
        if track is None:
            faces = track_media(info, rate_out, settings, use_cache=mine.use_cache, progress=reporter)
        else:
            faces = given_track(track, info, rate_out)
        source = Source(video_path, info.is_image, info.has_audio, rate_out, faces,
                        faces if run.nosmooth else faces.smoothed())
        result = _dub(generator, source, wav, sound=sound, outfile=outfile,
                      frames=lambda n_out: FrameSource(info, rate_out, keep=replayed(n_out, len(faces), run.loop)),
                      size=(info.width, info.height), colour=info.colour, loop=run.loop, crf=run.crf,
                      batch_size=run.batch_size, progress=reporter, start=start,
                      alive=info.is_image and not run.still, face_index=run.face_index, lookahead=run.lookahead)
    return dataclasses.replace(result, replaced=replaces, scaled_from=info.stored_size)


PREVIEW_SECONDS = 2.0  # a preview tracks this much of the start of a video (unless its whole track is cached)


@dataclasses.dataclass
class Preview:
    """One frame of a result, made before the long run."""

    original: np.ndarray  # the source frame, BGR uint8
    frame: np.ndarray  # the same frame with the planned mouth drawn in
    face: np.ndarray  # its face landmarks (68, 2)
    time: float  # seconds into the sound whose mouth the frame shows
    source_frame: int  # index of the source frame
    photo: bool = False  # the source is a photo


def preview(*, video_path: str, audio_path: Optional[str] = None, text: Optional[str] = None, model: str = "sync",
            options: Optional[RunOptions] = None, model_options: Optional[GeneratorOptions] = None,
            quiet: bool = False, progress: Optional[ProgressCallback] = None, cancel: Optional[CancelCheck] = None,
            **keywords: Any) -> Preview:
    """The frame whose mouth moves furthest from rest (against the sound's quietest moment) as
    `lip_sync` would draw it, in seconds rather than the whole run: a check of the face it
    found and the mouth it draws.

    Takes `lip_sync`'s arguments and makes the same checks. The face is tracked over the first
    PREVIEW_SECONDS of a video only (the whole track when the cache has it); the mouth comes
    from the whole sound, without personalization, drawn on the source frame that the moment
    plays over when that frame was tracked, else on the first tracked frame with a face.
    """
    reporter = Progress(quiet, progress, cancel)
    run, mine = run_options(model, options, model_options, keywords, caller="preview")
    if "personalize" in mine.names():
        mine = mine.replace(personalize="off")
    fps = 25.0 if run.fps is None else run.fps
    info, box = checked_inputs(video_path, audio_path, text, run.box)
    generator = make_generator(model, mine)
    rate_out, settings = media_tracking(info, fps, run.detector, run.face_index, box)
    with temp_dir("preview") as workdir:
        wav = audio_lib.load_audio(prepare_audio(audio_path, text, workdir, run.voice, run.rate, reporter))
    n_source = 1 if info.is_image else max(1, int(round(info.duration * rate_out)))
    track = track_media(info, rate_out, settings, use_cache=mine.use_cache, progress=reporter,
                        first=max(1, int(round(PREVIEW_SECONDS * rate_out))))
    if len(track) < n_source and not track.most_faces:
        raise NoFaceError(f"{video_path}: no face found in the first {PREVIEW_SECONDS:g} s, where the preview "
                          "looks (a full run reads the whole video)")
    require_faces(track, video_path, run.face_index)
    source = Source(video_path, info.is_image, info.has_audio, rate_out, track, track.smoothed())
    sound_stage, renderer = generator.stages(source, reporter)
    n_out = audio_lib.frame_count(len(wav), rate_out)
    mouths = sound_stage.plan(wav, rate_out, n_out)
    values = np.asarray(mouths[list(range(n_out))], np.float32).reshape(n_out, -1)
    quietest = int(np.argmin(mouth_drive(wav, rate_out, n_out)))
    j = int(np.argmax(np.abs(values - values[quietest]).sum(1)))  # the mouth furthest from its shape at rest
    k = source_index(j, n_source)
    if k >= len(track) or not track.valid[k]:
        k = int(np.flatnonzero(track.valid)[0])
    original = list(_head_frames(info, rate_out, k + 1, exact=True))[-1]
    face = source.smooth.landmarks[k]
    frame = renderer.render([original], [face], mouths[[j]])[0]
    return Preview(original, frame, face, (j + 0.5) / rate_out, k, info.is_image)


def _head_frames(info: MediaInfo, fps: float, n: int, exact: bool):
    """The first `n` frames of a video at `fps` (a photo: its one frame)."""
    if info.is_image:
        return iter([read_image(info.path, (info.width, info.height))])
    return itertools.islice(VideoReader(info, fps, exact=exact), n)


def _dub(generator: Generator, source: Source, wav: np.ndarray, *, sound: str, outfile: str,
         frames: Callable[[int], ContextManager[Callable[[int], Optional[np.ndarray]]]], size: Tuple[int, int],
         colour: Optional[Colour], loop: str, crf: int, batch_size: int, progress: Progress, start: float,
         alive: bool = False, face_index: Optional[int] = None, lookahead: Optional[float] = None) -> Result:
    """The common end of both entry points: the generator's stages plan every output frame's
    mouth from `wav` and render them over the source. `frames(n_out)` opens the source frames
    (a context giving frame i by index); `alive`: add blinks and head motion (a photo);
    `lookahead`: plan as a stream does (`stream_plan`)."""
    require_faces(source.track, source.path, face_index)
    sound_stage, renderer = generator.stages(source, progress)
    n_out = audio_lib.frame_count(len(wav), source.fps)
    if lookahead is None:
        mouths = sound_stage.plan(wav, source.fps, n_out)
    else:
        mouths = stream_plan(sound_stage, wav, source.fps, lookahead)
    if alive:
        renderer = AliveRenderer(renderer, source.fps, n_out / source.fps)
    with frames(n_out) as frame:
        without_face = render_video(outfile, frames=frame, faces=source.smooth.landmarks, mouths=mouths,
                                    renderer=renderer, size=size, fps=source.fps, sound=sound, loop=loop, crf=crf,
                                    batch_size=batch_size, source_name=source.path, progress=progress, colour=colour)
    return Result(outfile, n_out / source.fps, n_out, without_face, source.fps, time.time() - start)


def stream_plan(sound_stage, wav: np.ndarray, fps: float, lookahead: Optional[float]) -> np.ndarray:
    """The mouths a live stream plans for `wav` fed in STREAM_CHUNK_S chunks, hearing `lookahead`
    seconds after each frame."""
    stream = sound_stage.stream(fps, lookahead)
    step = int(STREAM_CHUNK_S * audio_lib.SAMPLE_RATE)
    parts = [stream.feed(wav[first:first + step]) for first in range(0, len(wav), step)]
    return np.concatenate(parts + [stream.finish()])


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
    RunOptions(fps=fps, detector=detector, box=box, nosmooth=nosmooth, loop=loop, crf=crf, batch_size=batch_size)
    mine = Wav2LipOptions(pads=tuple(pads), checkpoint_path=checkpoint_path, device=device)
    folder = FrameFolder(frames_dir, fps)
    check_readable(audio_path, "audio")
    stem = os.path.splitext(os.path.basename(audio_path))[0]
    outfile = outfile or default_outfile(os.path.basename(os.path.normpath(frames_dir)), stem, output_dir)
    replaces = check_outfile(outfile, [audio_path, folder.audio_path])
    resized = folder.width // resize_factor // 2 * 2, folder.height // resize_factor // 2 * 2
    check_box(box, *resized, frames_dir)  # in the resized frames' pixels, as in Wav2Lip
    generator = make_generator("wav2lip", mine)
    wav = audio_lib.load_audio(audio_path)
    width, height = fit_size(*resized)
    box = _scaled(box, width / resized[0])

    def frame(i: int):
        image = folder.get(i)
        if resize_factor == 1 and image.shape[1] == width and image.shape[0] == height:
            return image
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)

    settings = TrackSettings(detector=detector, box=box)
    track: FaceTrack = track_frames((frame(i) for i in range(len(folder))), settings, folder.fps,
                                    total=len(folder), progress=reporter)
    source = Source(frames_dir, False, False, folder.fps, track, track if nosmooth else track.smoothed())
    result = _dub(generator, source, wav, sound=audio_path, outfile=outfile, frames=lambda n_out: nullcontext(frame),
                  size=(width, height), colour=folder.colour, loop=loop, crf=crf, batch_size=batch_size,
                  progress=reporter, start=start)
    return dataclasses.replace(result, replaced=replaces)
