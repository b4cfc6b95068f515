import os
import subprocess

import numpy as np
import pytest

from lipsync.io import files as lsfiles
from lipsync.io import media as lsmedia
from lipsync.errors import InputError, OutputError

from conftest import encode_frames, ffmpeg, moving_face_frames


def test_probe_video(media):
    info = lsmedia.probe(media["video"])
    assert (info.width, info.height, info.fps) == (256, 256, 25.0)
    assert info.has_video and not info.has_audio and not info.is_image
    assert abs(info.duration - 2.0) < 0.05


def test_probe_image(media):
    info = lsmedia.probe(media["photo"])
    assert info.is_image and (info.width, info.height) == (256, 256)


def test_probe_audio_only(media):
    info = lsmedia.probe(media["wav"])
    assert info.has_audio and not info.has_video


def test_probe_rejects_corrupt_video(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(os.urandom(5000))
    with pytest.raises(InputError, match=r"broken\.mp4: not a readable video or audio file"):
        lsmedia.probe(str(bad))


def test_probe_rejects_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.mp4: input file not found"):
        lsmedia.probe(str(tmp_path / "nope.mp4"))


def test_reader_yields_every_frame_once(media):
    frames = list(media_reader(media["video"]))
    assert len(frames) == 50
    assert frames[0].shape == (256, 256, 3) and frames[0].dtype == np.uint8


def media_reader(path, fps=None):
    return lsmedia.VideoReader(lsmedia.probe(path), fps)


def test_reader_makes_variable_frame_rate_constant(tmp_path):
    # frames at irregular times: 10 frames over 1 s with uneven gaps
    src = encode_frames(str(tmp_path / "cfr.mp4"), moving_face_frames(20, 64), 20)
    vfr = str(tmp_path / "vfr.mkv")
    subprocess.run([ffmpeg(), "-loglevel", "error", "-i", src, "-vf", "setpts='PTS+0.03*sin(N)/TB'", "-fps_mode", "vfr",
                    "-c:v", "libx264", vfr], check=True)
    frames = list(media_reader(vfr, fps=20))
    assert 18 <= len(frames) <= 22


def test_reader_applies_rotation_metadata(tmp_path):
    wide = [np.zeros((48, 96, 3), np.uint8) for _ in range(5)]
    src = encode_frames(str(tmp_path / "wide.mp4"), wide, 25)
    rotated = str(tmp_path / "rotated.mp4")
    subprocess.run([ffmpeg(), "-loglevel", "error", "-display_rotation", "90", "-i", src, "-c", "copy", rotated], check=True)
    info = lsmedia.probe(rotated)
    assert (info.width, info.height) == (48, 96)
    frames = list(lsmedia.VideoReader(info))
    assert frames[0].shape == (96, 48, 3)


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255 ** 2 / max(mse, 1e-12))


def test_writer_is_visually_lossless_and_muxes_sound(tmp_path, media):
    frames = list(media_reader(media["video"]))[:25]  # already through 4:2:0 once, as any input video is
    out = str(tmp_path / "out.mp4")
    with lsmedia.VideoWriter(out, 256, 256, 25, audio_path=media["wav"]) as w:
        for f in frames:
            w.write(f)
    info = lsmedia.probe(out)
    assert info.has_audio and info.fps == 25 and (info.width, info.height) == (256, 256)
    back = list(lsmedia.VideoReader(info))
    assert len(back) == 25
    psnr = [_psnr(a, b) for a, b in zip(frames, back)]
    # this moving, finely textured test face is harder than real footage (see the integration tests)
    assert np.mean(psnr) >= 38 and min(psnr) >= 37


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "result.mp4"
    with pytest.raises(RuntimeError):
        with lsfiles.atomic_output(str(target)) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"partial")
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_atomic_output_refuses_unwritable_folder(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")  # a file where the output folder should be: unwritable even for root
    with pytest.raises(OutputError, match=r"a_file/sub: cannot create the output folder \(Not a directory\)"):
        with lsfiles.atomic_output(str(blocker / "sub" / "x.mp4")):
            pass
    assert blocker.read_text() == "x"


@pytest.mark.parametrize("ext,codec", [("mkv", "libx264"), ("mov", "libx264"), ("avi", "mpeg4"), ("webm", "libvpx-vp9"),
                                       ("mpg", "mpeg1video")])
def test_reads_common_containers(tmp_path, media, ext, codec):
    out = str(tmp_path / f"clip.{ext}")
    subprocess.run([ffmpeg(), "-loglevel", "error", "-i", media["video"], "-t", "0.4", "-c:v", codec, "-b:v", "2M", out],
                   check=True)
    info = lsmedia.probe(out)
    assert (info.width, info.height) == (256, 256)
    assert 9 <= len(list(lsmedia.VideoReader(info))) <= 11


@pytest.mark.parametrize("ext", ["mp3", "m4a", "flac", "ogg"])
def test_loads_common_audio_formats(tmp_path, media, ext):
    from lipsync.io.audio import load_audio

    out = str(tmp_path / f"sound.{ext}")
    subprocess.run([ffmpeg(), "-loglevel", "error", "-i", media["wav"], out], check=True)
    wav = load_audio(out)
    assert abs(len(wav) / 16000 - 3.0) < 0.1
