"""Pixels the tool does not touch come back as ffmpeg's own re-encode would give them: the
YUV -> BGR -> YUV round trip keeps the source's matrix, range and tags, with exact rounding."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

from conftest import encode_frames, ffmpeg, moving_face_frames, shared_clip, speechlike, write_wav
from lipsync.io import media

BT709 = ["-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv"]


def _yuv(path: str, n: int) -> np.ndarray:
    """The first n frames as yuv444p planes (no RGB conversion: the measure is independent of ours)."""
    info = media.probe(path)
    raw = subprocess.run([ffmpeg(), "-v", "error", "-i", path, "-frames:v", str(n), "-f", "rawvideo",
                          "-pix_fmt", "yuv444p", "-sws_flags", "accurate_rnd+full_chroma_int+bitexact", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, 3, info.height, info.width)


def _psnr_rows(a: np.ndarray, b: np.ndarray, rows: slice) -> float:
    mse = np.mean([(x[:, rows].astype(float) - y[:, rows].astype(float)) ** 2 for x, y in zip(a, b)])
    return float(10 * np.log10(255.0 ** 2 / mse))


def _untouched_psnr(src: str, out: str, direct: str, n: int, rows: slice):
    ref = _yuv(src, n)
    return _psnr_rows(ref, _yuv(out, n), rows), _psnr_rows(ref, _yuv(direct, n), rows)


def _reencode(src: str, dst: str, crf: int = 18) -> str:
    subprocess.run([ffmpeg(), "-v", "error", "-y", "-i", src, "-c:v", "libx264", "-crf", str(crf), "-pix_fmt",
                    "yuv420p", dst], check=True)
    return dst


@pytest.mark.parametrize("tags", [[], BT709], ids=["untagged", "bt709"])
def test_untouched_rows_are_as_good_as_a_plain_reencode(tmp_path, cache_dir, tags):
    import lipsync

    extra = (["-vf", "scale=out_color_matrix=bt709:out_range=tv,setparams=color_primaries=bt709:color_trc=bt709"]
             + tags) if tags else []
    src = encode_frames(str(tmp_path / "src.mp4"), moving_face_frames(30), 25, extra=extra)
    wav = write_wav(str(tmp_path / "s.wav"), speechlike(1.2), 16000)
    out = str(tmp_path / "out.mp4")
    lipsync.lip_sync(video_path=src, audio_path=wav, outfile=out, model="warp", quiet=True)
    ours, plain = _untouched_psnr(src, out, _reencode(src, str(tmp_path / "direct.mp4")), 30, slice(0, 90))
    assert ours >= plain - 0.3, (ours, plain)
    assert media.probe(out).colour == media.probe(src).colour  # the tags are kept
    if tags:
        assert media.probe(src).colour.primaries == "bt709"


@pytest.mark.integration
def test_hd_bt709_footage_keeps_its_colours(tmp_path, cache_dir):
    import lipsync

    clip = str(tmp_path / "hd.mp4")
    subprocess.run([ffmpeg(), "-v", "error", "-y", "-i", shared_clip("video", "lp_s18.mp4"), "-t", "1.6", "-c", "copy",
                    clip], check=True)
    assert media.probe(clip).colour.matrix == "bt709"
    wav = write_wav(str(tmp_path / "s.wav"), speechlike(1.2), 16000)
    out = str(tmp_path / "out.mp4")
    lipsync.lip_sync(video_path=clip, audio_path=wav, outfile=out, model="warp", quiet=True)
    ours, plain = _untouched_psnr(clip, out, _reencode(clip, str(tmp_path / "direct.mp4")), 30, slice(0, 180))
    assert ours >= plain - 0.3, (ours, plain)
    assert media.probe(out).colour == media.probe(clip).colour


@pytest.mark.parametrize("line, expected", [
    ("h264 (Main), yuv420p(tv, bt709, progressive), 1280x720", ("bt709", "bt709", "bt709", "tv")),
    ("h264, yuv420p(tv, smpte170m/smpte170m/bt709, progressive), 512x512", ("smpte170m", "smpte170m", "bt709", "tv")),
    ("h264 (High), yuvj420p(pc, progressive), 256x256", (None, None, None, "pc")),
    ("h264 (High), yuv420p(progressive), 844x844", (None, None, None, None)),
    ("mpeg4 (Simple Profile) (mp4v / 0x7634706D), yuv420p, 224x224", (None, None, None, None)),
])
def test_colour_descriptions_are_read_from_the_stream_line(line, expected):
    c = media.parse_colour(line)
    assert (c.matrix, c.primaries, c.transfer, c.range) == expected


def test_frame_folders_remember_the_source_colour(tmp_path):
    from lipsync.io.frames import FrameFolder, extract_frames

    extra = ["-vf", "scale=out_color_matrix=bt709:out_range=tv,setparams=color_primaries=bt709:color_trc=bt709"] + BT709
    src = encode_frames(str(tmp_path / "src.mp4"), moving_face_frames(5), 25, extra=extra)
    extract_frames(video_path=src, output_dir=str(tmp_path / "frames"), quiet=True)
    assert FrameFolder(str(tmp_path / "frames")).colour == media.probe(src).colour
    assert FrameFolder(str(tmp_path / "frames")).colour.matrix == "bt709"


def test_only_colour_names_the_encoder_knows_become_tags():
    odd = media.Colour(matrix="gbr", primaries="unknownish", transfer="bt709", range="tv")
    assert odd.tags() == ["-color_trc", "bt709", "-color_range", "tv"]
    assert "color_matrix" not in odd.decode_filter() and "color_primaries" not in odd.encode_filter()
