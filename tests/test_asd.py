"""The learned speaking scorer (Light-ASD / LR-ASD in TensorFlow) against the published code,
and the crops it reads."""
import os

import cv2
import numpy as np
import pytest

from lipsync.eval import asd, avsync

from conftest import ROOT

FIXTURE = os.path.join(ROOT, "tests", "data", "asd_reference.npz")
SHARED_MODELS = os.path.join(ROOT, "..", "shared", "models")


@pytest.fixture(scope="module")
def reference():
    with np.load(FIXTURE) as data:
        return {k: data[k] for k in data.files}


def test_mfcc_matches_python_speech_features(reference):
    mine = asd.mfcc(reference["sound"].astype(np.float32) / 32768.0)
    n = len(reference["mfcc"])
    assert mine.shape[1] == 13 and len(mine) >= n
    np.testing.assert_allclose(mine[:n], reference["mfcc"], atol=2e-3, rtol=1e-4)


def test_mfcc_frames_like_the_published_features():
    # python_speech_features: 1 + ceil((samples - 400) / 160) frames, the last one zero-padded
    assert len(asd.mfcc(np.zeros(16000, np.float32))) == 99
    assert len(asd.mfcc(np.zeros(300, np.float32))) == 1
    assert np.isfinite(asd.mfcc(np.zeros(1000, np.float32))).all()  # silence: log of eps, not -inf


def test_shipped_lr_asd_reproduces_the_published_model(reference):
    net = avsync.load_scorer()
    assert net.architecture == "lr"
    logits = net(reference["mfcc"], reference["faces"])
    assert logits.shape == reference["lr"].shape == (len(reference["faces"]),)
    np.testing.assert_allclose(logits, reference["lr"], atol=1e-4)


def test_light_asd_reproduces_the_published_model(reference, tmp_path):
    weights = os.path.join(SHARED_MODELS, "light_asd_talkset.model")
    if not os.path.exists(weights):
        pytest.skip("../shared/models is not here")
    pytest.importorskip("torch")
    out = str(tmp_path / "light.npz")
    asd.convert(weights, out)
    with np.load(out) as data:
        net = asd.ASDNet({k: data[k] for k in data.files})
    assert net.architecture == "light"
    np.testing.assert_allclose(net(reference["mfcc"], reference["faces"]), reference["light"], atol=1e-4)


def test_scores_are_batched_over_sound_offsets(reference):
    net = avsync.load_scorer()
    feats, faces = reference["mfcc"], reference["faces"]
    video, sound = net.visual_embedding(faces), net.audio_embedding(feats)
    batch = net.scores(np.stack([sound, sound[::-1]]), video)
    np.testing.assert_allclose(batch[0], net(feats, faces), atol=1e-5)
    np.testing.assert_allclose(batch[1], net.scores(sound[::-1], video)[0], atol=1e-5)


def test_gru_matches_a_step_by_step_reference():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    w_ih, w_hh = rng.standard_normal((12, 3)).astype(np.float32), rng.standard_normal((12, 4)).astype(np.float32)
    b_ih, b_hh = rng.standard_normal(12).astype(np.float32), rng.standard_normal(12).astype(np.float32)
    out = asd.gru(x, w_ih, w_hh, b_ih, b_hh)
    h = np.zeros((2, 4))
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    for t in range(5):
        gi, gh = x[:, t] @ w_ih.T + b_ih, h @ w_hh.T + b_hh
        r, z = sig(gi[:, :4] + gh[:, :4]), sig(gi[:, 4:8] + gh[:, 4:8])
        h = (1 - z) * np.tanh(gi[:, 8:] + r * gh[:, 8:]) + z * h
        np.testing.assert_allclose(out[:, t], h, atol=1e-5)


def test_crop_takes_the_demos_lower_face_region():
    # the demo's crop of a box with half-size s centred at (cx, cy): 1.4 s wide around cx,
    # from cy - 0.3 s to cy + 1.1 s; mark the corners of that region and find them in the crop
    gray = np.full((400, 400), 50, np.uint8)
    cx, cy, s = 200.0, 150.0, 100.0
    x0, x1, y0, y1 = cx - 0.7 * s, cx + 0.7 * s, cy - 0.3 * s, cy + 1.1 * s
    cv2.rectangle(gray, (int(x0), int(y0)), (int(x1) - 1, int(y1) - 1), 255, -1)
    crop = avsync.crop_face(gray, cx, cy, s)
    assert crop.shape == (112, 112)
    assert crop[2:-2, 2:-2].min() > 200  # the whole crop is inside the marked region
    wider = avsync.crop_face(gray, cx, cy, s * 1.2)
    assert wider[0, 0] < 100 and wider[-1, -1] < 100  # and a larger box reaches outside it


def test_crop_outside_the_frame_is_the_demos_grey():
    crop = avsync.crop_face(np.zeros((100, 100), np.uint8), 90.0, 90.0, 80.0)  # reaches x 146, y 178
    assert crop[-1, -1] == 110 and crop[0, 0] == 0


def test_face_boxes_follow_the_landmarks():
    from lipsync.face.landmarks import BROWS, JAW

    points = np.zeros((2, 68, 2), np.float32)
    points[:, :, 0], points[:, :, 1] = 100, 100
    points[0, JAW, 0] = np.linspace(60, 140, len(JAW))  # jaw 80 wide
    points[0, JAW[8], 1] = 190  # chin
    points[0, BROWS, 1] = 90
    points[1] = np.nan
    boxes = avsync.face_boxes(points)
    top = 90 - 0.15 * 100
    assert boxes[0] == pytest.approx([100, (top + 190) / 2, (190 - top) / 2])
    assert np.isnan(boxes[1]).all()
