"""Live mode: a talking avatar driven by sound as it arrives, in real time on a CPU.

    avatar = Avatar.prepare("face.mp4")          # once: face track, person's model, mouth bank (cached)
    session = avatar.session()                    # one stream
    for chunk in microphone():                    # 16 kHz mono, float32 or int16, any size
        for frame in session.feed(chunk):         # LiveFrame: index, time (s), BGR image
            show(frame.image)
    for frame in session.finish(): ...

The mouth comes from the stream planner of a generator that can stream (the default model's
is the causal `generators.sync_live.LivePlan`), which hands out a frame once the sound `lookahead_s` after its middle has arrived; the avatar's
own video plays back and forth underneath (its first LOOP_SECONDS, held in memory), and the
mouth rests wherever the sound is quiet or missing (`session.rest`).

`run_live` is the real-time driver behind `lip_sync.py --live`: it reads the sound from a
`SoundInput` (standard input, raw s16le, or a file played at real-time speed), fills the
gaps of a starved input with silence so that the stream keeps its clock, drops the rendering
of frames it cannot render in time (the frame before is shown again), and writes MPEG-TS
(H.264 + AAC) through one ffmpeg process (`StreamWriter`).
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import queue
import sys
import time
from typing import Deque, List, Optional, Sequence, Tuple

import numpy as np

from . import generators
from .errors import InputError
from .face.track import require_faces, track_media
from .generators.base import Source
from .generators.options import GeneratorOptions
from .io import audio as audio_lib
from .io.files import NAME_MAX, atomic_output, check_output, shorten
from .io.media import (VIDEO_OUTPUTS, Colour, MediaInfo, VideoReader, check_readable, fps_fraction, read_image,
                       signals_deferred)
from .io.realtime import SoundInput, StreamWriter
from .io.source import source_index
from .io.tts import require_sound
from .pipeline import Tracks
from .progress import CancelCheck, Progress, ProgressCallback
from .render.alive import AliveRenderer
from .run_options import RunOptions

LOOP_SECONDS = 10.0  # the avatar loops (back and forth) over at most this much of its video...
LOOP_BYTES = 512 << 20  # ...held in memory in at most this many bytes
ALIVE_PERIOD_S = 600.0  # a photo's blinks repeat after this long
STARVED_S = 0.1  # the input this far behind the stream's clock: silence fills in, the mouth rests
MAX_BACKLOG = 3  # more frames than this waiting to be rendered: the oldest are dropped
LIVE_LOOKAHEAD = 0.2  # seconds of sound after a frame's middle that live mode waits for (see the README's table)
SAMPLE_RATE = audio_lib.SAMPLE_RATE


@dataclasses.dataclass
class LiveFrame:
    """One frame of a live stream."""

    index: int
    time: float  # when it starts on the stream's clock, seconds (index / fps)
    image: np.ndarray  # BGR uint8 (H, W, 3)
    dropped: bool = False  # not rendered in time: the previous frame's image


class Avatar:
    """A face prepared for live use: its looping frames, their landmarks, the sound-to-mouth
    stage and the renderer (`prepare`)."""

    def __init__(self, name: str, frames: List[np.ndarray], faces: np.ndarray, stage, renderer, fps: float,
                 colour: Optional[Colour] = None, photo: bool = False):
        self.name, self.frames, self.faces, self.stage, self.fps = name, frames, faces, stage, fps
        self.colour, self.photo = colour, photo
        self._drawer = renderer
        self.renderer = AliveRenderer(renderer, fps, ALIVE_PERIOD_S) if photo else renderer
        self.renderer_name = type(renderer).__name__
        self.height, self.width = frames[0].shape[:2]

    @classmethod
    def prepare(cls, video_path: str, *, model: str = "sync", options: Optional[RunOptions] = None,
                model_options: Optional[GeneratorOptions] = None, track: Optional[Tracks] = None,
                loop_seconds: float = LOOP_SECONDS, quiet: bool = False, progress: Optional[ProgressCallback] = None,
                cancel: Optional[CancelCheck] = None, **keywords) -> "Avatar":
        """The avatar of a video or photo, with `lip_sync`'s options (`options`, `model_options` or
        their fields as keywords) and checks; `model` is a generator that can plan a stream
        (`Generator.streams`). The face is tracked over the first `loop_seconds` of a video
        (cached), unless its `track` is given."""
        from .pipeline import checked_media, given_track, make_generator, media_tracking, run_options

        reporter = Progress(quiet, progress, cancel)
        generators.require_stream(model, "live mode")
        run, mine = run_options(model, options, model_options, keywords, caller="Avatar.prepare")
        if not (loop_seconds > 0):
            raise InputError(f"loop length {loop_seconds:g} s: must be more than 0")
        info, box = checked_media(video_path, run.box)
        generator = make_generator(model, mine)
        rate, settings = media_tracking(info, 25.0 if run.fps is None else run.fps, run.detector, run.face_index,
                                        box)
        rate = float(fps_fraction(rate))  # the rate the stream declares (23.98 is 24000/1001): no drift in an hour
        n = 1 if info.is_image else max(1, min(int(round(loop_seconds * rate)),
                                               LOOP_BYTES // (info.width * info.height * 3)))
        if track is None:
            track = track_media(info, rate, settings, use_cache=mine.use_cache, progress=reporter, first=n)
        else:
            track = given_track(track, info, rate, first=n)
        require_faces(track, video_path, run.face_index)
        smooth = track.smoothed()
        frames = _read_frames(info, rate, len(track))
        source = Source(video_path, info.is_image, info.has_audio, rate, track, smooth)
        stage, renderer = generator.stages(source, reporter)
        return cls(video_path, frames, smooth.landmarks[:len(frames)], stage, renderer, rate, info.colour,
                   photo=info.is_image and not run.still)

    def session(self, lookahead_s: Optional[float] = LIVE_LOOKAHEAD) -> "LiveSession":
        """A new stream (see `LiveSession`); `lookahead_s`: how much sound after a frame's middle
        it waits for (None: all that the model reads, about 0.26 s)."""
        return LiveSession(self, lookahead_s)

    def render(self, indices: Sequence[int], mouths: np.ndarray) -> List[np.ndarray]:
        """The images of stream frames `indices`, with their planned mouths."""
        out: List[Optional[np.ndarray]] = []
        todo = []
        for k, j in enumerate(indices):
            i = source_index(j, len(self.frames))
            if np.isnan(self.faces[i][0, 0]):
                out.append(self.frames[i])
            else:
                out.append(None)
                todo.append((k, i))
        if todo:
            if self.photo:  # the sway and blinks go by the stream's time (the blinks repeat after ALIVE_PERIOD_S)
                self.renderer.frames_done = indices[todo[0][0]]
            drawn = self.renderer.render([self.frames[i] for _, i in todo], [self.faces[i] for _, i in todo],
                                         mouths[[k for k, _ in todo]])
            for (k, _), image in zip(todo, drawn):
                out[k] = image
            chosen = getattr(self._drawer, "chosen", None)  # the exemplar renderer's record, for inspection
            if chosen is not None and len(chosen) > 1000:  # a stream runs for hours: keep its latest only
                del chosen[:-100]
        return out


def _read_frames(info: MediaInfo, fps: float, n: int) -> List[np.ndarray]:
    """The first `n` frames of a video at `fps` (a photo: its one frame)."""
    if info.is_image:
        return [read_image(info.path, (info.width, info.height))]
    frames = []
    for frame in VideoReader(info, fps):
        frames.append(frame)
        if len(frames) == n:
            break
    if not frames:
        raise InputError(f"{info.path}: no frame could be decoded")
    return frames


class LiveSession:
    """One stream of an `Avatar`: `feed` sound, get the frames that became ready."""

    def __init__(self, avatar: Avatar, lookahead_s: Optional[float] = LIVE_LOOKAHEAD):
        self.avatar = avatar
        self.plan = avatar.stage.stream(avatar.fps, lookahead_s)
        self._last: Optional[np.ndarray] = None

    @property
    def frames_out(self) -> int:
        """Frames handed out so far."""
        return self.plan.frames_out

    @property
    def lookahead_s(self) -> float:
        return self.plan.lookahead_s

    @property
    def samples(self) -> int:
        """Sound received so far (silence of `rest` included), in samples."""
        return self.plan.samples

    def feed(self, chunk: np.ndarray, newest: Optional[int] = None) -> List[LiveFrame]:
        """Adds sound (16 kHz mono, float32 in [-1, 1] or int16); returns the frames that became
        ready, in order. `newest`: render only that many of the newest (the others are dropped,
        showing the image before: how a real-time driver that fell behind catches up)."""
        return self._frames(self.plan.feed(chunk), newest)

    def rest(self, seconds: float) -> List[LiveFrame]:
        """No sound for `seconds`: the mouth rests."""
        return self.feed(np.zeros(int(round(seconds * SAMPLE_RATE)), np.float32))

    def finish(self) -> List[LiveFrame]:
        """The frames still waiting for sound after the end: the stream is as long as its sound."""
        return self._frames(self.plan.finish(), None)

    def _frames(self, mouths: np.ndarray, newest: Optional[int]) -> List[LiveFrame]:
        """The frames of the mouths the plan just handed out (the last len(mouths) of its frames)."""
        n = len(mouths)
        first = self.plan.frames_out - n
        drop = 0 if newest is None else max(0, n - newest)
        images = self.avatar.render(range(first + drop, first + n), mouths[drop:]) if n > drop else []
        out = []
        for k in range(n):
            if k >= drop:
                self._last = images[k - drop]
            elif self._last is None:
                self._last = self.avatar.frames[source_index(first + k, len(self.avatar.frames))]
            out.append(LiveFrame(first + k, (first + k) / self.avatar.fps, self._last, dropped=k < drop))
        return out


@dataclasses.dataclass
class LiveReport:
    """What a live run did."""

    frames: int
    fps: float
    dropped: int
    latencies: List[float]  # seconds from each chunk of sound in to the frame that shows its end out
    seconds: float  # wall time
    size: Tuple[int, int]
    renderer: str
    lookahead_s: float
    outfile: str

    def latency(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) if self.latencies else float("nan")

    def summary(self) -> str:
        latency = (f"median {1000 * self.latency(50):.0f} ms, 95th percentile {1000 * self.latency(95):.0f} ms"
                   if self.latencies else "none measured (only silence)")
        return (f"live: {self.frames} frames ({self.frames / self.fps:.1f} s at {self.fps:g} fps, "
                f"{self.size[0]}x{self.size[1]}, {self.renderer}) to {self.outfile} in {self.seconds:.1f} s; "
                f"latency from sound in to frame out: {latency} (look-ahead {1000 * self.lookahead_s:.0f} ms); "
                f"{self.dropped} frames dropped")


def run_live(avatar: Avatar, sound: SoundInput, writer: StreamWriter, *,
             lookahead_s: Optional[float] = LIVE_LOOKAHEAD, progress: Progress = Progress(), outfile: str = "-",
             max_backlog: Optional[int] = MAX_BACKLOG) -> LiveReport:
    """Streams `avatar` speaking `sound` into `writer` in real time, until the sound ends.
    Frames ready beyond `max_backlog` at once are dropped (None: none is)."""
    start = time.monotonic()
    session = avatar.session(lookahead_s)
    fps = avatar.fps
    audio: Deque[np.ndarray] = collections.deque()  # the stream's sound not written yet
    audio_start = 0  # sample of the stream where `audio` begins
    arrivals: Deque[Tuple[int, float]] = collections.deque()  # (end sample of a chunk heard, when it came)
    latencies: List[float] = []
    dropped = frames = heard = 0  # heard: samples that arrived (not the silence filled in)

    def boundary(j: int) -> int:
        return int(round(j * SAMPLE_RATE / fps))

    def take(n: int) -> np.ndarray:
        nonlocal audio_start
        got, need = [], n
        while need and audio:
            head = audio[0]
            if len(head) <= need:
                got.append(audio.popleft())
                need -= len(head)
            else:
                got.append(head[:need])
                audio[0] = head[need:]
                need = 0
        audio_start += n - need
        if need:
            got.append(np.zeros(need, np.float32))
        return np.concatenate(got) if got else np.zeros(0, np.float32)

    def emit(out: List[LiveFrame]) -> None:
        nonlocal dropped, frames
        for frame in out:
            a, b = boundary(frame.index), boundary(frame.index + 1)
            writer.write(frame.image, take(b - a))
            now = time.monotonic()
            while arrivals and arrivals[0][0] <= b:
                latencies.append(now - arrivals.popleft()[1])
            dropped += frame.dropped
            frames += 1
        if out:
            bar.update(len(out))

    clock = time.monotonic()  # the stream's time 0
    with progress.stage("live", None) as bar:
        try:
            while True:
                silence_due = clock + session.samples / SAMPLE_RATE + STARVED_S
                try:
                    item = sound.get(silence_due - time.monotonic())
                except queue.Empty:  # starved: the stream goes on in silence
                    gap = time.monotonic() - clock - session.samples / SAMPLE_RATE
                    silence = np.zeros(max(1, int(gap * SAMPLE_RATE)), np.float32)
                    with signals_deferred():  # a stop lands between frames, never inside one
                        audio.append(silence)
                        emit(session.feed(silence, newest=max_backlog))
                    continue
                if item is None:
                    break
                chunks, ended = [item], False
                while not ended:  # all that came meanwhile, in one go
                    try:
                        more = sound.get(0)
                    except queue.Empty:
                        break
                    ended = more is None
                    if not ended:
                        chunks.append(more)
                end = session.samples
                with signals_deferred():
                    for arrived, chunk in chunks:
                        audio.append(chunk)
                        end += len(chunk)
                        arrivals.append((end, arrived))
                        heard += len(chunk)
                    emit(session.feed(np.concatenate([chunk for _, chunk in chunks]), newest=max_backlog))
                if ended:
                    break
        except KeyboardInterrupt:  # Ctrl-C (SIGTERM, SIGHUP) ends a live stream as the end of its sound does
            pass
        if heard == 0:
            raise InputError(f"{sound.name}: no sound arrived before it ended")
        emit(session.finish())
    return LiveReport(frames, fps, dropped, latencies, time.monotonic() - start, (avatar.width, avatar.height),
                      avatar.renderer_name, session.lookahead_s, outfile)


STREAM_OUTPUTS = (".ts",) + VIDEO_OUTPUTS  # MPEG-TS, or a container ffmpeg finishes at the end


def default_live_outfile(video_path: str, output_dir: str = "output") -> str:
    stem = os.path.splitext(os.path.basename(video_path))[0]
    return os.path.join(output_dir, shorten(stem, NAME_MAX, keep="_live.ts"))


def live(*, video_path: str, audio_path: Optional[str] = None, text: Optional[str] = None,
         outfile: Optional[str] = None, output_dir: str = "output", lookahead_s: Optional[float] = LIVE_LOOKAHEAD,
         speed: float = 1.0, model: str = "sync", options: Optional[RunOptions] = None,
         model_options: Optional[GeneratorOptions] = None, quiet: bool = False, **keywords) -> LiveReport:
    """`video_path`'s face speaking a sound as it arrives, written as a stream in real time.

    The sound is raw 16 kHz mono s16le on standard input for `audio_path` "-", else any audio
    file (or `text`, spoken first) played at `speed` times real time. `outfile` "-" writes
    MPEG-TS to standard output as it is made (a stream cannot be written under a temporary name
    and renamed: a run that fails leaves what was sent); a file is written under a temporary
    name and renamed at the end, as every other output. `model`, `options`, `model_options`
    and the option `keywords` (crf=..., voice=..., personalize=...) are `lip_sync`'s; they
    reach `Avatar.prepare` too.
    """
    from .io.files import temp_dir
    from .pipeline import prepare_audio, run_options

    require_sound(audio_path, text, "give --audio_path - (raw 16 kHz mono s16le on standard input), a sound file, "
                                    "or a text to speak")
    generators.require_stream(model, "live mode")
    run, mine = run_options(model, options, model_options, keywords, caller="live")
    if lookahead_s is not None:
        run = run.replace(lookahead=lookahead_s)  # checked as a look-ahead
    if not (speed >= 0):
        raise InputError(f"speed {speed:g}: must be 0 (as fast as it goes) or more")
    to_stdout = outfile == "-"
    outfile = outfile or default_live_outfile(video_path, output_dir)
    if audio_path not in (None, "-"):
        check_readable(audio_path, "audio")
    if not to_stdout:
        check_output(outfile, "output", extensions=STREAM_OUTPUTS, inputs=[video_path, audio_path])
    reporter = Progress(quiet)
    avatar = Avatar.prepare(video_path, model=model, options=run, model_options=mine, quiet=quiet)
    with temp_dir("live") as workdir:
        if audio_path == "-":
            if sys.stdin is None or sys.stdin.closed:
                raise InputError("standard input: closed; pipe the sound in (raw 16 kHz mono s16le)")
            sound = SoundInput.from_pipe(sys.stdin.buffer)
        else:
            sound = SoundInput.from_file(prepare_audio(audio_path, text, workdir, run.voice, run.rate, reporter),
                                         speed)
        try:
            with contextlib.ExitStack() as stack:
                path = outfile if to_stdout else stack.enter_context(atomic_output(outfile))
                writer = StreamWriter("-" if to_stdout else path, avatar.width, avatar.height, avatar.fps,
                                      avatar.colour, run.crf, name=outfile)
                try:
                    report = run_live(avatar, sound, writer, lookahead_s=lookahead_s, progress=reporter,
                                      outfile=outfile)
                except BaseException:
                    writer.abort()
                    raise
                writer.close()
        finally:
            sound.close()
    return report
