import numpy as np
import pytest

from lipsync.face import detect, landmarks
from lipsync.face import track as face_track
from lipsync.generators import geometry
from lipsync.io import features
from lipsync.generators.warp import place_opening
from lipsync.render.mesh import MeshRenderer

from conftest import speechlike


def test_tracker_finds_the_face(astro):
    image, points = astro
    assert points.shape == (68, 2)
    mouth = points[landmarks.MOUTH].mean(0)
    assert 100 < mouth[0] < 160 and 100 < mouth[1] < 170  # lower middle of the crop
    assert landmarks.inter_ocular(points) > 30


def test_tracker_returns_none_without_a_face():
    blank = np.full((120, 120, 3), 80, np.uint8)
    assert face_track.FaceTracker(face_track.TrackSettings())(blank) is None


def test_face_index_picks_faces_left_to_right(astro):
    image, _ = astro
    pair = np.concatenate([image, image[:, ::-1]], axis=1)
    right = face_track.FaceTracker(face_track.TrackSettings(face_index=1))(pair)
    left = face_track.FaceTracker(face_track.TrackSettings(face_index=0))(pair)
    assert right[:, 0].mean() > 256 > left[:, 0].mean()
    assert face_track.FaceTracker(face_track.TrackSettings(face_index=5))(pair) is None


def test_fixed_box_skips_detection(astro):
    image, points = astro
    import cv2

    (left, top, right, bottom), = detect.HogDetector().detect(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
    fixed = face_track.FaceTracker(face_track.TrackSettings(box=(left, top, right, bottom)))(image)
    np.testing.assert_allclose(fixed, points, atol=1.0)
    blank = np.full_like(image, 80)
    assert face_track.FaceTracker(face_track.TrackSettings(box=(left, top, right, bottom)))(blank) is not None


def test_smoothing_has_no_lag_and_keeps_gaps():
    t = np.arange(60, dtype=np.float32)
    track = np.zeros((60, 68, 2), np.float32)
    track[:, :, 0] = np.sin(t / 6)[:, None]
    track[30] = np.nan
    out = face_track.smooth_landmarks(track, sigma=1.0)
    assert np.isnan(out[30]).all()
    a, b = track[:29, 0, 0], out[:29, 0, 0]
    lags = [np.corrcoef(a[5 + k:24 + k], b[5:24])[0, 1] for k in (-2, -1, 0, 1, 2)]
    assert int(np.argmax(lags)) == 2  # best aligned at lag 0


def test_target_points_reach_the_wanted_opening(astro):
    _, points = astro
    for wanted in (0.0, 0.1, 0.3):
        moved = geometry.target_points(points, wanted)
        assert landmarks.mouth_opening(moved) == pytest.approx(max(wanted, 0.0), abs=0.02)
        np.testing.assert_array_equal(moved[landmarks.STABLE], points[landmarks.STABLE])


def test_render_moves_only_the_lower_face(astro):
    image, points = astro
    out = MeshRenderer(place_opening).render([image], [points], np.array([0.3]))[0]
    changed = np.any(out != image, axis=-1)
    assert changed.sum() > 200
    rows = np.flatnonzero(changed.any(axis=1))
    assert rows.min() >= points[29, 1] - 1  # nothing above the middle of the nose
    eyes_and_up = slice(0, int(points[landmarks.NOSE, 1].min()))
    np.testing.assert_array_equal(out[eyes_and_up], image[eyes_and_up])


def test_rendered_mouth_opening_is_what_was_asked(astro):
    image, points = astro
    tracker = face_track.FaceTracker(face_track.TrackSettings())
    renderer = MeshRenderer(place_opening)
    measured = []
    for wanted in (0.02, 0.15, 0.3):
        seen = tracker(renderer.render([image], [points], np.array([wanted]))[0])
        measured.append(landmarks.mouth_opening(seen))
    assert measured[0] < measured[1] < measured[2]
    assert measured[2] - measured[0] > 0.12


def test_mouth_drive_follows_the_syllables():
    wav = speechlike(3.0)
    drive = features.mouth_drive(wav, 25, 75)
    t = (np.arange(75) + 0.5) / 25
    loud = np.clip(np.sin(2 * np.pi * 2 * t), 0, None) ** 2
    assert np.corrcoef(drive, loud)[0, 1] > 0.7
    assert drive[t > 2.5].max() < 0.05  # the silent tail rests closed


def test_mouth_drive_is_zero_for_silence():
    assert features.mouth_drive(np.zeros(16000, np.float32), 25, 25).max() == 0.0


def test_calibration_uses_the_persons_range():
    openings = np.concatenate([np.full(30, 0.02), np.linspace(0.02, 0.3, 30), [np.nan]])
    cal = geometry.calibrate(openings)
    assert cal.rest == pytest.approx(0.02, abs=0.01)
    assert 0.2 < cal.peak <= 0.31
    still = geometry.calibrate(np.array([0.01]))
    assert still.peak - still.rest == pytest.approx(geometry.DEFAULT_SPAN)


def test_cnn_detector_finds_the_face(astro):
    image, points = astro
    cnn = face_track.FaceTracker(face_track.TrackSettings(detector="cnn"))(image)
    assert cnn is not None
    assert np.abs(cnn[landmarks.MOUTH] - points[landmarks.MOUTH]).mean() < 6


def test_face_alignment_backend_without_weights_is_a_clear_error(tmp_path, monkeypatch):
    from lipsync.errors import MissingBackendError

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty weights folder
    with pytest.raises(MissingBackendError, match="face.alignment"):
        detect.make_detector("face_alignment")
