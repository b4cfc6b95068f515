"""closed_f1, bilabial_closure, leakage and streams that start late, with answers known by construction."""
import importlib.util
import os
import subprocess

import numpy as np
import pytest

from lipsync.eval import evaluation, metrics
from lipsync.io import phones
from lipsync.io import audio as audio_lib
from lipsync.io.media import VideoReader, probe

from conftest import ROOT, encode_frames, ffmpeg, moving_face_frames, remux_late, shared_clip, write_wav

LIPEVAL = os.path.join(ROOT, "..", "shared", "eval", "lipeval.py")


def _lipeval():
    if not os.path.exists(LIPEVAL):
        pytest.skip("../shared/eval is not here")
    spec = importlib.util.spec_from_file_location("lipeval", LIPEVAL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_closed_f1_by_construction():
    reference = np.array([0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0])  # closed at 0, 1, 4, 8
    assert metrics.closed_f1(reference, reference) == 1.0
    assert metrics.closed_f1(np.ones(12), reference) == 0.0  # never closes
    half = reference.copy()
    half[[0, 1]] = 1.0  # closes on 2 of the 4
    assert metrics.closed_f1(half, reference) == pytest.approx(2 * 2 / (2 + 4))
    assert np.isnan(metrics.closed_f1(reference[:9], reference[:9]))  # too few frames
    with_gap = reference.copy()
    with_gap[2] = np.nan  # frames without a face are left out
    assert metrics.closed_f1(with_gap, reference) == 1.0


def test_closed_f1_is_the_dub_tests():
    lipeval = _lipeval()
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.uniform(0, 0.3, 60), rng.uniform(0, 0.3, 60)
        a[rng.random(60) < 0.1] = np.nan
        assert metrics.closed_f1(a, b) == pytest.approx(lipeval.closed_f1(a, b), abs=1e-12)


def test_bilabial_closure_by_construction():
    fps = 25.0
    opens = np.full(50, 0.3)
    opens[[10, 11, 30]] = 0.0  # closed around 0.4 s and at 1.2 s
    heard = [("M", 0.40, 0.46), ("AH", 0.46, 0.6), ("P", 1.16, 1.20), ("B", 1.6, 1.68), ("SIL", 1.7, 2.0)]
    share, count = metrics.bilabial_closure(heard, opens, fps)
    assert count == 3 and share == pytest.approx(2 / 3)  # m and p close, b at 1.6 s does not
    assert metrics.bilabial_closure([("AH", 0.0, 0.5)], opens, fps) == (pytest.approx(np.nan, nan_ok=True), 0)
    # "within a frame": a closure one frame after the phone counts, two frames after does not
    m = [("M", 0.40, 0.48)]  # frames 10 and 11
    for closed, counts in ((9, True), (12, True), (8, False), (13, False)):
        opens = np.full(50, 0.3)
        opens[closed] = 0.0
        assert metrics.bilabial_closure(m, opens, fps)[0] == float(counts), closed


def test_phones_are_recognised_in_speech(tmp_path):
    pytest.importorskip("pocketsphinx")
    from lipsync.io import tts

    def bilabials(text, name):
        out = str(tmp_path / name)
        tts.synthesize(text, out)
        heard = phones.recognise(audio_lib.load_audio(out))
        # on the sound's clock (the last segment may run into pocketsphinx's final, padded analysis window)
        assert all(0 <= s < e for _, s, e in heard) and heard[-1][2] <= len(audio_lib.load_audio(out)) / 16000 + 0.1
        return sum(p in phones.BILABIALS for p, _, _ in heard)

    many = bilabials("Bob bought a map. Mum paid for maple syrup.", "bob.wav")  # nine
    none = bilabials("She is sitting in the sun, reading a long story.", "sun.wav")
    assert many >= 3 and many >= none + 2


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 2 s face video with a sound whose first loud burst is at 0.5 s."""
    d = tmp_path_factory.mktemp("late")
    sound = np.zeros(32000, np.float32)
    sound[8000:8800] = 0.5 * np.sin(np.arange(800) / 3)
    wav = write_wav(str(d / "s.wav"), sound, 16000)
    video = encode_frames(str(d / "v.mp4"), moving_face_frames(50), 25)
    both = str(d / "both.mp4")
    subprocess.run([ffmpeg(), "-loglevel", "error", "-y", "-i", video, "-i", wav, "-map", "0:v", "-map", "1:a",
                    "-c:v", "copy", "-c:a", "pcm_s16le", str(d / "both.mkv")], check=True)
    return {"dir": d, "file": str(d / "both.mkv")}


def _late(clip, which, seconds=0.2):
    return remux_late(clip["file"], str(clip["dir"] / f"late_{which}.mkv"), seconds if which == "audio" else -seconds)


def _burst(wav):
    return int(np.argmax(np.abs(wav) > 0.1))


def test_sound_that_starts_late_is_padded(clip):
    late = _late(clip, "audio")
    assert audio_lib.stream_starts(late) == (pytest.approx(0.0, abs=1e-3), pytest.approx(0.2, abs=1e-3))
    base = _burst(audio_lib.load_audio(clip["file"]))
    assert base == pytest.approx(8000, abs=2)
    assert _burst(audio_lib.load_audio(late)) == pytest.approx(base + 3200, abs=2)
    assert len(list(VideoReader(probe(late)))) == 50  # the picture is as it was


def test_picture_that_starts_late_begins_with_its_first_frame_held(clip):
    late = _late(clip, "video")
    assert audio_lib.stream_starts(late) == (pytest.approx(0.2, abs=1e-3), pytest.approx(0.0, abs=1e-3))
    assert _burst(audio_lib.load_audio(late)) == pytest.approx(_burst(audio_lib.load_audio(clip["file"])), abs=2)
    frames = list(VideoReader(probe(late)))
    original = list(VideoReader(probe(clip["file"])))
    assert len(frames) == 55  # 0.2 s of the first frame, then the 50 frames: both streams on the file's clock
    assert all(np.array_equal(frames[i], original[0]) for i in range(6))
    assert np.array_equal(frames[30], original[25])


def test_a_file_without_video_starts_at_its_sound(media):
    assert audio_lib.stream_starts(media["wav"]) == (None, 0.0)
    assert len(audio_lib.load_audio(media["wav"])) == 48000


def test_leakage_of_a_result_that_replays_its_source(media, cache_dir):
    r = evaluation.evaluate(video=media["video"], source=media["video"], speaking=False, phones=False, quiet=True)
    assert r["leakage"] == pytest.approx(1.0)


def test_length_and_rate_differences_are_warned_about(media, tmp_path, cache_dir, caplog):
    short = str(tmp_path / "short.mp4")
    subprocess.run([ffmpeg(), "-loglevel", "error", "-y", "-i", media["video"], "-t", "1", "-r", "30", short], check=True)
    with caplog.at_level("WARNING", logger="lipsync"):
        r = evaluation.evaluate(video=media["video"], reference=short, speaking=False, phones=False, quiet=True)
    assert "frame rate 30 differs from the result's 25: it is resampled to 25" in caplog.text
    assert "lasts 1.0 s, the result 2.0 s" in caplog.text
    assert r["frames"] == 50 and r["closed_f1"] is not None


def test_side_by_side_labels_the_source_pane(media, tmp_path, cache_dir):
    sbs, png = str(tmp_path / "s.mp4"), str(tmp_path / "p.png")
    evaluation.evaluate(video=media["video"], source=media["video"], side_by_side=sbs, plot=png,
                        speaking=False, phones=False, quiet=True)
    info = probe(sbs)
    assert (info.width, info.height) == (512, 256 + 120)
    import cv2

    from lipsync.io.media import VideoReader

    first = next(iter(VideoReader(info)))
    source_label = first[:30, 256:330]
    assert (np.abs(source_label.astype(int) - (60, 160, 60)).sum(axis=2) < 120).any()  # green "source" text
    sheet = cv2.imread(png)
    assert sheet.shape[1] == 1000 and sheet.shape[0] == 220  # no sound, no reference: one plot


@pytest.mark.integration
def test_closed_f1_agrees_with_the_dub_test_on_a_dev_clip(tmp_path):
    lipeval = _lipeval()
    real = shared_clip("grid", "lbax4n.mpg")
    early = str(tmp_path / "early.mp4")  # the same speaker 3 frames ahead: closures partly agree
    subprocess.run([ffmpeg(), "-loglevel", "error", "-y", "-ss", "0.12", "-i", real, "-c:v", "libx264", "-crf", "12",
                    "-an", early], check=True)
    mine = evaluation.evaluate(video=early, reference=real, speaking=False, phones=False, quiet=True)["closed_f1"]
    theirs = lipeval.compare(early, real)["closed_f1"]
    assert 0.1 < theirs < 0.95
    assert mine == pytest.approx(theirs, abs=0.01)


def test_a_silent_sound_has_no_offset(media, tmp_path, cache_dir):
    silent = str(tmp_path / "silent.mkv")
    subprocess.run([ffmpeg(), "-loglevel", "error", "-y", "-i", media["video"], "-f", "lavfi", "-i",
                    "anullsrc=r=16000:cl=mono", "-map", "0:v", "-map", "1:a", "-t", "2", "-c:v", "copy",
                    "-c:a", "pcm_s16le", silent], check=True)
    r = evaluation.evaluate(video=silent, phones=False, quiet=True)
    assert r["av_offset_frames"] is None and r["av_sync_confidence"] == 0.0


def test_a_video_without_a_face_has_no_sound_measures(media, tmp_path, cache_dir):
    noface = str(tmp_path / "noface.mkv")
    subprocess.run([ffmpeg(), "-loglevel", "error", "-y", "-i", media["noface"], "-i", media["short_wav"],
                    "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "pcm_s16le", noface], check=True)
    r = evaluation.evaluate(video=noface, quiet=True)
    assert r["frames_without_face"] == r["frames"] == 10
    assert r["av_offset_frames"] is None and r["speaking_score"] is None and r["sync_score"] is None
