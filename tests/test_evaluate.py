"""evaluate.py against answers known by construction."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from lipsync import pipeline
from lipsync.eval import evaluation, metrics, panel
from lipsync.face.landmarks import mouth_opening
from lipsync.face.track import FaceTracker, TrackSettings
from lipsync.io import media
from lipsync.errors import InputError

from conftest import ROOT, encode_frames, ffmpeg, remux_late, shared_clip, speechlike, write_wav


def _frames(path):
    return list(media.VideoReader(media.probe(path)))


@pytest.fixture(scope="module")
def talking(tmp_path_factory):
    """A 4 s talking head with its sound: the astronaut photo lip-synced to syllables."""
    d = tmp_path_factory.mktemp("talking")
    os.environ.setdefault("LIPSYNC_CACHE_DIR", str(d / "cache"))
    from conftest import astronaut_face
    import cv2

    photo = str(d / "face.png")
    cv2.imwrite(photo, astronaut_face())
    rng = np.random.default_rng(3)
    # irregular syllables, so that every lag is distinguishable
    sound = np.concatenate([speechlike(rng.uniform(0.25, 0.6), syllables_per_s=rng.uniform(2, 5), seed=i)[:int(16000 * 0.5)]
                            for i in range(10)])
    wav = write_wav(str(d / "speech.wav"), sound, 16000)
    video = str(d / "talking.mp4")
    pipeline.lip_sync(video_path=photo, audio_path=wav, outfile=video, quiet=True)
    return {"video": video, "wav": wav, "dir": d}


def _shifted(talking, k, name):
    """The talking video with its pictures k frames late (k < 0: early); same sound."""
    frames = _frames(talking["video"])
    n = len(frames)
    moved = [frames[min(n - 1, max(0, i - k))] for i in range(n)]
    silent = encode_frames(str(talking["dir"] / f"{name}_v.mp4"), moved, 25)
    out = str(talking["dir"] / f"{name}.mp4")
    subprocess.run([ffmpeg(), "-loglevel", "error", "-y", "-i", silent, "-i", talking["video"], "-map", "0:v", "-map", "1:a",
                    "-c", "copy", out], check=True)
    return out


def test_a_video_against_itself_scores_perfectly(talking):
    r = evaluation.evaluate(video=talking["video"], reference=talking["video"], quiet=True)
    assert r["frames"] == len(_frames(talking["video"])) > 80 and r["frames_without_face"] == 0
    assert r["mouth_corr"] == pytest.approx(1.0)
    assert r["lmd"] == pytest.approx(0.0, abs=1e-6)
    assert r["offset_frames"] == 0
    assert r["psnr"] == metrics.PSNR_CAP_DB and r["ssim"] == pytest.approx(1.0)
    assert r["sharpness_ratio"] == pytest.approx(1.0)


@pytest.mark.parametrize("k", [2, 4, -3])
def test_delayed_video_reports_its_delay(talking, k):
    delayed = _shifted(talking, k, f"shift{k}")
    r = evaluation.evaluate(video=delayed, reference=talking["video"], quiet=True)
    assert r["offset_frames"] == k
    assert r["mouth_corr"] < 0.95
    assert r["sync_confidence"] > 0.3


def test_sound_delayed_200ms_is_5_frames_later(talking):
    base = evaluation.evaluate(video=talking["video"], quiet=True)
    late = str(talking["dir"] / "late_sound.mp4")
    subprocess.run([ffmpeg(), "-loglevel", "error", "-y", "-i", talking["video"], "-c:v", "copy", "-af", "adelay=200",
                    "-c:a", "aac", late], check=True)
    moved = evaluation.evaluate(video=late, quiet=True)
    # the sync model's own mouth on its own sound: within 2 frames (it opens the way real speakers do, a little
    # before the sound's loudest moment, and this synthetic voice's syllables swell slowly)
    assert abs(base["av_offset_frames"]) <= 2
    assert moved["av_offset_frames"] == base["av_offset_frames"] + 5
    assert base["av_sync_confidence"] > 1.0  # standard deviations over the shifts tried


def test_annotations_from_the_clips_own_landmarks(talking, tmp_path):
    tracker = FaceTracker(TrackSettings())
    opening = np.array([mouth_opening(tracker(f)) for f in _frames(talking["video"])])
    labels = np.where(opening > np.median(opening), "open", "closed")
    csv = tmp_path / "notes.csv"
    csv.write_text("frame,label\n" + "".join(f"{i},{l}\n" for i, l in enumerate(labels)))
    r = evaluation.evaluate(video=talking["video"], annotations=str(csv), quiet=True)
    assert r["annotation_accuracy"] >= 0.8
    assert r["annotated_frames"] == len(labels)
    assert set(r["confusion"]) == {"open", "closed"}


def test_a_still_frame_scores_poorly_against_the_real_video(talking):
    frames = _frames(talking["video"])
    still = encode_frames(str(talking["dir"] / "still.mp4"), [frames[0]] * len(frames), 25)
    perfect = evaluation.evaluate(video=talking["video"], reference=talking["video"], quiet=True)
    r = evaluation.evaluate(video=still, reference=talking["video"], quiet=True)
    assert r["mouth_corr"] is None or r["mouth_corr"] < 0.3
    assert r["lmd"] > 1.0 > perfect["lmd"]
    assert r["psnr_mouth"] < 35


def test_audio_similarity_finds_a_shifted_or_wrong_mux(talking, tmp_path):
    same = evaluation.evaluate(video=talking["video"], audio=talking["wav"], quiet=True)
    assert same["audio_similarity"] > 0.9 and same["audio_offset_ms"] == pytest.approx(0, abs=13)
    late = str(tmp_path / "late.wav")
    subprocess.run([ffmpeg(), "-loglevel", "error", "-i", talking["wav"], "-af", "adelay=200", late], check=True)
    shifted = evaluation.evaluate(video=talking["video"], audio=late, quiet=True)
    assert shifted["audio_offset_ms"] == pytest.approx(-200, abs=13)
    assert shifted["audio_similarity"] < same["audio_similarity"]
    other = write_wav(str(tmp_path / "other.wav"), speechlike(4.0, syllables_per_s=7, seed=9) * 0.3, 16000)
    assert evaluation.evaluate(video=talking["video"], audio=other, quiet=True)["audio_similarity"] < 0.8


def test_plot_and_side_by_side_are_written(talking, tmp_path):
    png, sbs = str(tmp_path / "p.png"), str(tmp_path / "s.mp4")
    evaluation.evaluate(video=talking["video"], reference=talking["video"], plot=png, side_by_side=sbs, quiet=True)
    import cv2

    assert cv2.imread(png).shape[1] == 1000
    info = media.probe(sbs)
    assert info.width == 512 and info.height == 256 + 120 and info.has_audio


def test_leakage_and_side_by_side_follow_a_shorter_looped_source(talking, tmp_path):
    from lipsync.io.source import source_index

    frames = _frames(talking["video"])
    source = encode_frames(str(tmp_path / "source.mp4"), frames[:40], 25)  # the result outlasts it, as a dub does
    result = encode_frames(str(tmp_path / "looped.mp4"), [frames[source_index(i, 40)] for i in range(100)], 25)
    sbs = str(tmp_path / "sbs.mp4")
    r = evaluation.evaluate(video=result, source=source, side_by_side=sbs, speaking=False, phones=False, quiet=True)
    assert r["leakage"] > 0.9  # every movement of the result's mouth is the source's (up to re-encoding)
    panes = list(media.VideoReader(media.probe(sbs)))
    assert len(panes) == 100  # the source does not cut the video short
    for i in (3, 45, 70):  # the source pane plays source_index(i), as the result was made
        assert np.abs(panes[i][40:256, 256:].astype(int) - panes[i][40:256, :256]).mean() < 3
    moved = evaluation.evaluate(video=result, source=_shifted(talking, 9, "leak9"), speaking=False, phones=False,
                                quiet=True)
    assert moved["leakage"] < r["leakage"] - 0.3  # another mouth at the same frames leaks less


def test_bad_annotations_name_the_line(talking, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("frame,label\n3,open\nseven,closed\n")
    with pytest.raises(InputError, match=r"bad\.csv: line 3: frame 'seven' is not a whole number"):
        evaluation.read_annotations(str(bad))


def test_reference_at_another_frame_rate_is_resampled_with_a_warning(talking, tmp_path, caplog):
    other = str(tmp_path / "30fps.mp4")
    subprocess.run([ffmpeg(), "-loglevel", "error", "-i", talking["video"], "-r", "30", other], check=True)
    with caplog.at_level("WARNING", logger="lipsync"):
        r = evaluation.evaluate(video=talking["video"], reference=other, speaking=False, phones=False, quiet=True)
    assert "frame rate 30 differs from the result's 25" in caplog.text
    assert r["mouth_corr"] > 0.9 and r["offset_frames"] == 0  # the same mouth, frame for frame


def test_cli_writes_json(talking, tmp_path):
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "evaluate.py"), "--video", talking["video"], "--reference",
                           talking["video"], "--json", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    for key in ("frames", "fps", "frames_without_face", "offset_frames", "sync_confidence", "lmd", "mouth_corr", "psnr",
                "ssim", "psnr_mouth", "ssim_mouth", "sharpness_ratio", "av_offset_frames", "av_sync_confidence",
                "sync_score", "speaking_score", "speaking_share", "closed_f1", "bilabial_closure", "bilabials"):
        assert key in doc
    assert "mouth_corr" in proc.stdout


def test_panel_is_blind_and_tally_gives_mos(talking, tmp_path):
    a = str(tmp_path / "method_a.mp4")
    b = str(tmp_path / "method_b.mp4")
    for p in (a, b):
        with open(talking["video"], "rb") as src, open(p, "wb") as dst:
            dst.write(src.read())
    out = tmp_path / "panel"
    page = panel.make_panel([a, b], str(out), seed=1)
    html = open(page, encoding="utf-8").read()
    assert "method_a" not in html and "method_b" not in html and "data:video/mp4;base64," in html
    key = json.loads((out / "key.json").read_text())
    names = sorted(key["clips"])
    assert names == ["A", "B"]
    judges = [{"A": (4, 3), "B": (2, 2)}, {"A": (5, 4), "B": (1, 2)}, {"A": (4, 5), "B": (2, 3)}]
    files = []
    for j, scores in enumerate(judges):
        doc = {"panel_id": key["panel_id"], "judge": f"j{j}",
               "scores": {n: {"sync": s[0], "naturalness": s[1]} for n, s in scores.items()}}
        path = out / f"scores-j{j}.json"
        path.write_text(json.dumps(doc))
        files.append(str(path))
    mos = panel.tally(files)
    clip_a = os.path.basename(key["clips"]["A"])
    assert mos[clip_a]["sync"]["mean"] == pytest.approx(13 / 3, abs=1e-3)
    assert mos[clip_a]["sync"]["n"] == 3
    # t(0.975, 2) = 4.303; std of (4, 5, 4) = 0.577
    assert mos[clip_a]["sync"]["ci95"] == pytest.approx(4.303 * 0.57735 / 3 ** 0.5, abs=0.01)
    wrong = out / "stray.json"
    wrong.write_text(json.dumps({"panel_id": "x", "scores": {}}))
    with pytest.raises(InputError, match="another panel"):
        panel.tally(files + [str(wrong)])


@pytest.mark.integration
def test_benchmark_writes_a_table(tmp_path):
    clip = shared_clip("grid", "bbaf2n.mpg")
    folder = tmp_path / "clips"
    folder.mkdir()
    os.symlink(clip, folder / "bbaf2n.mpg")
    out = tmp_path / "BENCH.md"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "evaluate.py"), "benchmark", str(folder), "--out", str(out),
                           "--quiet"], capture_output=True, text=True, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    table = out.read_text()
    row = [l for l in table.splitlines() if l.startswith("| bbaf2n.mpg")][0]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "speech"
    assert -1.0 <= float(cells[2]) <= 1.0 and float(cells[4]) > 0


@pytest.mark.integration
@pytest.mark.parametrize("clip", ["bbaf2n.mpg", "lbax4n.mpg", "swiz3n.mpg", "sbwe5n.mpg"])
def test_studio_recordings_are_in_sync(clip):
    r = evaluation.evaluate(video=shared_clip("grid", clip), quiet=True)
    assert abs(r["av_offset_frames"]) <= 1


@pytest.mark.integration
def test_a_clip_with_a_known_offset():
    # ../shared/data/README.md: lp_d20's sound is several frames off its picture
    r = evaluation.evaluate(video=shared_clip("video", "lp_d20.mp4"), quiet=True)
    assert r["av_offset_frames"] >= 4


@pytest.mark.integration
@pytest.mark.parametrize("late_s", [0.2, -0.2])
def test_a_stream_that_starts_late_moves_the_offset(tmp_path, late_s):
    clip = shared_clip("video", "retalk_2.mp4")
    base = evaluation.evaluate(video=clip, speaking=False, phones=False, quiet=True)
    moved = evaluation.evaluate(video=remux_late(clip, str(tmp_path / "late.mkv"), late_s), speaking=False, phones=False,
                                quiet=True)
    assert moved["av_offset_frames"] - base["av_offset_frames"] == pytest.approx(late_s * 25, abs=1)


@pytest.mark.integration
def test_a_clips_own_sound_scores_above_another_clips(tmp_path):
    clip = shared_clip("video", "retalk_2.mp4")
    dubbed = str(tmp_path / "other_sound.mkv")
    subprocess.run([ffmpeg(), "-loglevel", "error", "-y", "-i", clip, "-i", shared_clip("video", "lp_d20.mp4"),
                    "-map", "0:v:0", "-map", "1:a:0", "-c", "copy", "-shortest", dubbed], check=True)
    own = evaluation.evaluate(video=clip, phones=False, quiet=True)
    other = evaluation.evaluate(video=dubbed, phones=False, quiet=True)
    assert own["sync_score"] > other["sync_score"] + 0.1
    assert own["speaking_score"] > 0  # a face speaking
