"""End to end on the real clips of ../shared/data (skipped when absent)."""
import numpy as np
import pytest

from lipsync import pipeline
from lipsync.face.track import TrackSettings, track_media
from lipsync.io import media
from lipsync.progress import Progress

from conftest import shared_clip

pytestmark = pytest.mark.integration

CLIPS = ["retalk_1.mp4", "retalk_2.mp4", "retalk_4.mp4", "lp_d10.mp4", "lp_d12.mp4", "lp_d14.mp4", "lp_d18_silent.mp4",
         "lp_d19_silent.mp4", "lp_d20.mp4", "lp_d3_silent.mp4", "lp_s18.mp4"]


@pytest.mark.parametrize("clip", CLIPS)
def test_every_clip_lip_syncs(clip, tmp_path, cache_dir):
    video = shared_clip("video", clip)
    sound = shared_clip("audio", "retalk_2.wav")
    out = str(tmp_path / "out.mp4")
    result = pipeline.lip_sync(video_path=video, audio_path=sound, outfile=out, quiet=True)
    src, res = media.probe(video), media.probe(out)
    assert (res.width, res.height) == (src.width, src.height)
    assert abs(res.fps - src.fps) < 0.01
    assert abs(res.duration - media.probe(sound).duration) < 0.1
    assert result.frames_without_face < 0.1 * result.frames


def test_grid_clip_keeps_the_picture_outside_the_mouth(tmp_path, cache_dir):
    video = shared_clip("grid", "bbaf2n.mpg")
    sound = shared_clip("audio", "st_RD_Radio31_000.wav")
    out = str(tmp_path / "grid.mp4")
    pipeline.lip_sync(video_path=video, audio_path=sound, outfile=out, quiet=True)
    info = media.probe(video)
    track = track_media(info, info.fps, TrackSettings(), progress=Progress(True))
    src = list(media.VideoReader(info))
    res = list(media.VideoReader(media.probe(out)))
    psnr = []
    for i in range(len(src)):
        top = int(np.nanmin(track.landmarks[:, 29, 1])) - 4
        mse = np.mean((src[i][:top].astype(float) - res[i][:top].astype(float)) ** 2)
        psnr.append(10 * np.log10(255 ** 2 / max(mse, 1e-9)))
    assert np.mean(psnr) >= 38


def test_video_file_as_the_sound(tmp_path, cache_dir):
    video = shared_clip("video", "retalk_2.mp4")
    sound = shared_clip("video", "retalk_1.mp4")
    result = pipeline.lip_sync(video_path=video, audio_path=sound, outfile=str(tmp_path / "o.mp4"), quiet=True)
    assert abs(result.duration - 6.1) < 0.2
