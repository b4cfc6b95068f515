"""Training clips for the sound-to-mouth model: a talking-face video read into its sound and
its mouth on one clock.

Each clip is face-tracked the way the dub test measures (detection on every frame), its
mouth turned into the pose-free canonical frame (`lipsync.face.landmarks`), the phones of its sound
recognised (`lipsync.eval.phones`), and its sound-to-picture offset measured with the offset judge of `lipsync.eval.avsync` (the judge and the
loudness-opening correlation together) and removed, so that a clip whose sound is a few
frames late does not teach the model late mouths. The result is cached per file.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from typing import Optional

import numpy as np

from .. import cache
from ..face.landmarks import canonical_mouths
from ..io import audio as audio_lib

log = logging.getLogger(__name__)

DATASET_VERSION = 3  # part of the cache key
MAX_OFFSET = 8  # frames at 25 fps; a larger measured offset is not trusted
MIN_OFFSET = 3  # frames: smaller measured offsets are within the measure's noise (in-sync GRID clips read -1..0)
MIN_OFFSET_CONFIDENCE = 1.0  # standard deviations of the combined offset curve


@dataclasses.dataclass
class ClipData:
    """One clip's sound and mouth, in sync.

    mel: float32 (80, n_steps) raw log-mel (`audio.melspectrogram`) as recorded;
    mouths: float32 (n_frames, 20, 2) canonical mouth per video frame, NaN without a face;
    fps: the video's frame rate; measured: the sound's lag in 25 fps frames (+ = late) as
    measured (None: no clear alignment) with its confidence; offset: the lag removed (0 when
    small or unclear).
    """

    name: str
    mel: np.ndarray
    mouths: np.ndarray
    fps: float
    measured: Optional[int]
    confidence: float
    phones: list = dataclasses.field(default_factory=list)  # (phone, start s, end s) heard in the sound

    @property
    def visemes(self) -> np.ndarray:
        """float32 (n_steps, N_VISEMES): the viseme of each mel step (`visemes.viseme_track`)."""
        from ..generators.visemes import viseme_track

        return viseme_track(self.phones, self.mel.shape[1])

    @property
    def offset(self) -> int:
        clear = self.measured is not None and MIN_OFFSET <= abs(self.measured) <= MAX_OFFSET \
            and self.confidence >= MIN_OFFSET_CONFIDENCE
        return int(self.measured) if clear else 0

    def in_sync(self) -> "ClipData":
        """The clip with its sound moved by `offset`."""
        from ..eval.asd import FPS

        seconds = self.offset / FPS
        return dataclasses.replace(self, mel=shift_sound(self.mel, seconds),
                                   phones=[(p, a - seconds, b - seconds) for p, a, b in self.phones])

    def to_arrays(self) -> dict:
        return dict(mel=self.mel, mouths=self.mouths, fps=np.float64(self.fps),
                    measured=np.int64(-999 if self.measured is None else self.measured),
                    confidence=np.float64(self.confidence), phone_names=np.array([p for p, _, _ in self.phones], str),
                    phone_times=np.array([(a, b) for _, a, b in self.phones], np.float64).reshape(-1, 2))


def shift_sound(mel: np.ndarray, seconds: float) -> np.ndarray:
    """The log-mel with its sound moved `seconds` earlier (negative: later); steps moved in
    from outside read as silence."""
    steps = int(round(seconds * audio_lib.MEL_FRAMES_PER_SECOND))
    if steps == 0:
        return mel
    silence = np.full((mel.shape[0], abs(steps)), -audio_lib.MAX_ABS_VALUE, np.float32)
    if steps > 0:
        return np.concatenate([mel[:, steps:], silence[:, :min(steps, mel.shape[1])]], axis=1)[:, :mel.shape[1]]
    return np.concatenate([silence, mel[:, :steps]], axis=1)[:, :mel.shape[1]]


def read_clip(path: str, quiet: bool = True, use_cache: bool = True) -> Optional[ClipData]:
    """The clip's sound and mouth (as recorded; `ClipData.in_sync()` puts them in sync), or None
    when it lacks a sound, a face or speech."""
    from ..eval import asd, avsync
    from ..io.phones import recognise
    from ..face.track import TrackSettings, track_media
    from ..io.media import VideoReader, probe
    from ..progress import Progress
    from ..io.features import has_speech

    key = cache.entry_path("clips", cache.file_digest(path), DATASET_VERSION)
    name = os.path.basename(path)

    def from_arrays(arrays: dict) -> ClipData:
        measured = int(arrays["measured"])
        phones = [(str(p), float(a), float(b)) for p, (a, b) in zip(arrays["phone_names"], arrays["phone_times"])]
        return ClipData(name, arrays["mel"], arrays["mouths"], float(arrays["fps"]), None if measured == -999 else measured,
                        float(arrays["confidence"]), phones)

    cached = cache.load(key, from_arrays) if use_cache else None
    if cached is not None:
        return cached
    info = probe(path)
    if not info.has_video or not info.has_audio:
        log.info("%s: skipped (needs both video and sound)", path)
        return None
    fps = float(info.fps or 25.0)
    track = track_media(info, fps, TrackSettings(thorough=True), progress=Progress(quiet))
    wav = audio_lib.load_audio(path)
    mel = audio_lib.melspectrogram(wav)
    if not has_speech(mel) or track.valid.mean() < 0.5:
        log.info("%s: skipped (no speech or no face)", path)
        return None
    crops = avsync.face_crops(VideoReader(info, asd.FPS, exact=False), track.landmarks, fps)
    openings = avsync.at_rate(track.openings, fps, len(crops))
    face = avsync.at_rate(track.valid.astype(float), fps, len(crops)) > 0.5
    found = avsync.sound_offset(crops, wav, np.nan_to_num(openings), face=face, mel=mel)
    smooth = track.smoothed()
    clip = ClipData(name, mel, canonical_mouths(smooth.landmarks), fps, found.frames, float(found.confidence),
                    recognise(wav))
    log.info("%s: %d frames, sound offset %s (confidence %.2f), removed %d", name, len(track), found.frames,
             found.confidence, clip.offset)
    if use_cache:
        cache.save(key, clip.to_arrays())
    return clip
