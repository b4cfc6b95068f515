import os

import numpy as np
import pytest

from lipsync import pipeline
from lipsync.face import landmarks
from lipsync.face import track as face_track
from lipsync.io import media
from lipsync.progress import Progress
from lipsync.io import source as io_source

from conftest import write_wav, speechlike


def _frames(path):
    return list(media.VideoReader(media.probe(path)))


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255 ** 2 / max(mse, 1e-12))


def test_source_index_pingpong_and_forward():
    assert [io_source.source_index(j, 4) for j in range(9)] == [0, 1, 2, 3, 2, 1, 0, 1, 2]
    assert [io_source.source_index(j, 4, "forward") for j in range(6)] == [0, 1, 2, 3, 0, 1]
    assert io_source.source_index(7, 1) == 0


def test_video_synced_to_longer_audio(tmp_path, media, cache_dir):
    out = str(tmp_path / "out.mp4")
    result = pipeline.lip_sync(video_path=media["video"], audio_path=media["wav"], outfile=out, quiet=True)
    info = media_lib_probe(out)
    assert (info.width, info.height, info.fps) == (256, 256, 25.0)
    assert info.has_audio
    assert result.frames == 75 and result.frames_without_face == 0
    assert abs(info.duration - 3.0) < 0.1
    assert sorted(os.listdir(tmp_path)) == ["cache", "out.mp4"]  # no temporary file left behind


def media_lib_probe(path):
    return media.probe(path)


def test_unchanged_regions_stay_visually_lossless(tmp_path, media, cache_dir):
    out = str(tmp_path / "out.mp4")
    pipeline.lip_sync(video_path=media["video"], audio_path=media["short_wav"], outfile=out, quiet=True)
    src, res = _frames(media["video"]), _frames(out)
    assert len(res) == 25  # the 2 s video is cut at the end of the 1 s sound
    track = face_track.track_media(media_lib_probe(media["video"]), 25.0, face_track.TrackSettings(), progress=Progress(True))
    above, mouth = [], []
    for i in range(25):
        points = track.landmarks[i]
        top = int(points[29, 1]) - 4  # the tool never changes anything above mid-nose
        above.append(_psnr(src[i][:top], res[i][:top]))
        (x0, y0), (x1, y1) = points[48:68].min(0).astype(int) - 4, points[48:68].max(0).astype(int) + 4
        mouth.append(_psnr(src[i][y0:y1, x0:x1], res[i][y0:y1, x0:x1]))
    # crf 18 on this fine, moving texture (harder than real footage) keeps ~38 dB
    assert np.mean(above) >= 38 and min(above) >= 37
    assert min(mouth) < np.mean(above) - 8  # the mouth did change


def test_mouth_follows_the_sound(tmp_path, media, cache_dir):
    """Loud syllables open the mouth, the silent tail closes it (measured by dlib on the output)."""
    out = str(tmp_path / "out.mp4")
    pipeline.lip_sync(video_path=media["photo"], audio_path=media["wav"], outfile=out, quiet=True)
    tracker = face_track.FaceTracker(face_track.TrackSettings())
    opening = np.array([landmarks.mouth_opening(tracker(f)) for f in _frames(out)])
    t = (np.arange(len(opening)) + 0.5) / 25
    loud = np.clip(np.sin(2 * np.pi * 2 * t), 0, None) ** 2
    loud[t > 2.4] = 0
    assert len(opening) == 75
    assert np.corrcoef(opening, loud)[0, 1] > 0.6


def test_face_track_is_cached(tmp_path, media, cache_dir, monkeypatch):
    first = pipeline.lip_sync(video_path=media["video"], audio_path=media["short_wav"],
                              outfile=str(tmp_path / "a.mp4"), quiet=True)
    assert len(list(cache_dir.rglob("*.npz"))) == 1

    def no_tracking(*args, **kwargs):
        raise AssertionError("the face was tracked again")

    monkeypatch.setattr(face_track.FaceTracker, "__call__", no_tracking)
    second = pipeline.lip_sync(video_path=media["video"], audio_path=media["short_wav"],
                               outfile=str(tmp_path / "b.mp4"), quiet=True)
    assert second.frames == first.frames
    with pytest.raises(AssertionError, match="tracked again"):
        pipeline.lip_sync(video_path=media["video"], audio_path=media["short_wav"],
                          outfile=str(tmp_path / "c.mp4"), quiet=True, use_cache=False)


def test_frames_without_a_face_pass_through(tmp_path, cache_dir):
    from conftest import encode_frames, moving_face_frames

    frames = moving_face_frames(30)
    for i in range(10, 20):
        frames[i] = np.full_like(frames[i], 70)
    video = encode_frames(str(tmp_path / "gap.mp4"), frames, 25)
    wav = write_wav(str(tmp_path / "s.wav"), speechlike(1.2), 16000)
    out = str(tmp_path / "out.mp4")
    result = pipeline.lip_sync(video_path=video, audio_path=wav, outfile=out, quiet=True)
    assert result.frames == 30 and result.frames_without_face == 10
    src, res = _frames(video), _frames(out)
    assert min(_psnr(src[i], res[i]) for i in range(10, 20)) >= 38, [_psnr(src[i], res[i]) for i in range(8, 22)]


def test_photo_becomes_video_at_requested_fps(tmp_path, media, cache_dir):
    out = str(tmp_path / "photo.mp4")
    result = pipeline.lip_sync(video_path=media["photo"], audio_path=media["short_wav"], outfile=out, fps=30, quiet=True)
    info = media_lib_probe(out)
    assert result.frames == 30 and info.fps == 30


def test_text_is_spoken_then_synced(tmp_path, media, cache_dir):
    out = str(tmp_path / "said.mp4")
    result = pipeline.lip_sync(video_path=media["photo"], text="Good morning, everyone.", outfile=out, quiet=True)
    assert result.duration > 0.8
    assert media_lib_probe(out).has_audio


def test_default_output_name(tmp_path, media, cache_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = pipeline.lip_sync(video_path=media["photo"], audio_path=media["short_wav"], quiet=True)
    assert result.outfile == os.path.join("output", "face_short.mp4")
    assert os.path.exists(tmp_path / "output" / "face_short.mp4")


def test_frame_source_plays_back_and_forth_from_its_spool(tmp_path):
    from conftest import encode_frames

    frames = [np.full((32, 32, 3), 20 * i, np.uint8) for i in range(6)]
    video = encode_frames(str(tmp_path / "steps.mp4"), frames, 25)
    decoded = _frames(video)
    source = io_source.FrameSource(media.probe(video), 25.0, keep=io_source.replayed(14, 6))
    try:
        order = [io_source.source_index(j, 6) for j in range(14)]
        for i in order:
            np.testing.assert_array_equal(source.get(i), decoded[i])
    finally:
        source.close()
