"""The exemplar renderer (the person's own mouth for each shape), its mouth bank, the lower-face
limit of the mesh, the painted interior of photos, and a photo coming alive."""
import numpy as np
import pytest

from lipsync.face import exemplar as bank_lib
from lipsync.face import landmarks
from lipsync.generators import geometry
from lipsync.generators.warp import place_opening
from lipsync.render import alive
from lipsync.render.exemplar import ExemplarRenderer, choose
from lipsync.render.mesh import LOWER_FACE_MARGIN, MeshRenderer, lower_face_mask, painted_interior


@pytest.fixture(scope="module")
def opened(astro):
    """The astronaut with her mouth opened by the mesh, and its landmarks: a second real-looking shape."""
    image, points = astro
    wanted = place_opening(points, np.float32(0.3))
    return MeshRenderer(place_opening).warp(image, points, wanted), wanted


def test_bank_keeps_a_few_samples_per_shape_and_rejects_failed_fits(astro, monkeypatch):
    image, points = astro
    bank = bank_lib.MouthBank()
    for _ in range(20):
        bank.offer(image, points)
    assert len(bank) == bank_lib.BANK_PER_CELL  # one shape: a few samples, however long the video
    import cv2

    blurred = bank_lib.MouthBank()
    for _ in range(bank_lib.BANK_PER_CELL):
        blurred.offer(cv2.GaussianBlur(image, (0, 0), 2.0), points)
    blurred.offer(image, points)  # a sharp frame of a full cell replaces its most blurred one
    assert sorted(blurred.sharpness)[-1] > 2 * sorted(blurred.sharpness)[0]
    before = list(blurred.sharpness)
    blurred.offer(cv2.GaussianBlur(image, (0, 0), 3.0), points)  # a more blurred one is not kept
    assert blurred.sharpness == before
    w, h = bank.size
    assert bank.patches[0].shape == (h, w, 3) and bank.scale >= bank_lib.PATCH_SCALE[0]
    mouth_px = (bank.points[0][54, 0] - bank.points[0][48, 0])
    assert mouth_px > 60  # a small face is sampled at the bank's resolution, not its own
    for opening in np.linspace(0.05, 0.4, 12):
        bank.offer(image, geometry.target_points(points, float(opening)))
    assert len(bank) > 2 * bank_lib.BANK_PER_CELL
    scrambled = points.copy()
    scrambled[landmarks.MOUTH] = scrambled[landmarks.MOUTH][::-1] + [0, 60]
    before = len(bank)
    bank.offer(image, scrambled)
    bank.offer(image, points * 0.1)  # a face too small to sample
    bank.offer(image, None)
    assert len(bank) == before
    monkeypatch.setattr(bank_lib, "BANK_SIZE", 5)
    small = bank_lib.MouthBank()
    for opening in np.linspace(0.0, 0.45, 40):
        small.offer(image, geometry.target_points(points, float(opening)))
    assert len(small) == 5


def test_bank_round_trips_through_the_track_cache(astro, opened):
    image, points = astro
    bank = bank_lib.MouthBank()
    bank.offer(image, points)
    bank.offer(*opened)
    again = bank_lib.MouthBank.from_arrays(bank.to_arrays())
    assert len(again) == 2 and again.scale == bank.scale
    np.testing.assert_array_equal(np.array(again.points), np.array(bank.points))
    diff = np.abs(np.array(again.patches, np.int16) - np.array(bank.patches, np.int16))
    assert diff.mean() < 2.0  # stored as JPEG at high quality
    arrays = bank.to_arrays()
    arrays["bank_jpeg"] = arrays["bank_jpeg"][:50]
    with pytest.raises(ValueError, match="inconsistent"):
        bank_lib.MouthBank.from_arrays(arrays)
    arrays = bank.to_arrays()
    arrays["bank_jpeg"] = np.zeros_like(arrays["bank_jpeg"])
    with pytest.raises(ValueError, match="damaged"):
        bank_lib.MouthBank.from_arrays(arrays)


def test_choice_holds_a_sample_unless_another_is_much_closer():
    costs = np.array([[0.0, 1e-2], [5e-4, 0.0], [0.0, 1e-2], [1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_array_equal(choose(costs, switch=1e-3), [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(choose(costs, switch=0.0), [0, 1, 0, 1, 1])
    np.testing.assert_array_equal(choose(costs[1:], previous=1, switch=2e-2), [1, 1, 1, 1])
    many = np.random.default_rng(0).random((30, 200))
    picks = choose(many, switch=0.0)
    np.testing.assert_array_equal(picks, many.argmin(1))  # without a switch cost: the closest each frame


def test_exemplar_renderer_brings_the_sample_in_the_wanted_shape(astro, opened):
    image, points = astro
    open_frame, open_points = opened
    bank = bank_lib.MouthBank()
    bank.offer(image, points)
    bank.offer(open_frame, open_points)
    renderer = ExemplarRenderer(place_opening, bank)
    out_open, out_closed = renderer.render([image, image], [points, points], np.array([0.3, 0.3]))
    assert renderer.chosen == [1, 1]
    renderer.chosen.clear()
    closed = renderer.render([image], [points], np.array([landmarks.mouth_opening(points)]))[0]
    assert renderer.chosen == [0]
    mouth = (slice(int(points[50, 1]) - 2, int(points[57, 1]) + 8), slice(int(points[48, 0]), int(points[54, 0])))
    to_open = np.abs(out_open[mouth].astype(int) - open_frame[mouth]).mean()
    assert to_open < 8 < np.abs(image[mouth].astype(int) - open_frame[mouth]).mean()
    assert np.abs(closed[mouth].astype(int) - image[mouth]).mean() < 6
    above = slice(0, int(points[landmarks.NOSE, 1].min()))
    np.testing.assert_array_equal(out_open[above], image[above])


def test_the_mesh_changes_nothing_beyond_the_lower_face(astro):
    image, points = astro
    wanted = place_opening(points, np.float32(0.35))
    out = MeshRenderer(place_opening).warp(image, points, wanted)
    iod = landmarks.inter_ocular(points)
    reach = lower_face_mask(np.concatenate([points, wanted]), image.shape, iod * LOWER_FACE_MARGIN)
    changed = np.any(out != image, axis=-1)
    assert changed.sum() > 200
    assert not changed[reach < 1e-4].any()  # a background edge beside the jaw stays where it was


def test_painted_interior_is_shaded_teeth_and_cavity_in_the_lip_colour():
    inner = np.array([[10, 30], [30, 20], [50, 18], [70, 20], [90, 30], [70, 44], [50, 46], [30, 44]], np.float32)
    lips = np.array([90.0, 100.0, 170.0])  # BGR: reddish
    paint = painted_interior((60, 100, 3), inner, lips, iod=100.0)
    teeth, cavity = paint[24, 50], paint[42, 50]
    assert teeth.mean() > 1.8 * cavity.mean()
    assert paint.max() < 200  # no glaring white
    assert cavity[2] > cavity[0]  # the cavity takes the lips' red, not grey
    assert paint[26:40, 12:88].std() > 10  # shaded, not a flat polygon


def test_a_photo_blinks_and_sways_deterministically(astro):
    t = np.arange(0, 20, 0.04)
    blinks = alive.blink_amount(t, 20.0)
    starts = t[1:][(blinks[1:] > 0) & (blinks[:-1] == 0)]
    assert 3 <= len(starts) <= 10 and np.all(np.diff(starts) >= alive.BLINK_GAP_S[0] - 0.05)
    assert blinks.max() == pytest.approx(alive.BLINK_DEPTH, abs=0.2) and blinks.min() == 0
    np.testing.assert_array_equal(blinks, alive.blink_amount(t, 20.0))
    image, points = astro
    shut, moved = alive.close_eyes(image, points, 0.9)
    eye_gap = lambda p: float(np.linalg.norm(p[[37, 38]] - p[[41, 40]], axis=1).mean())  # noqa: E731
    assert eye_gap(moved) < 0.2 * eye_gap(points)
    eyes = slice(int(points[37, 1]) - 3, int(points[41, 1]) + 3)
    assert np.abs(shut[eyes].astype(int) - image[eyes]).mean() > 2
    sway = np.array([alive.head_motion(float(s)) for s in t])
    assert 0.2 < np.abs(sway[:, 0]).max() < 2.0  # a fraction of a degree to a degree of roll
    assert np.abs(np.diff(sway[:, 0])).max() < 0.05  # smooth


def test_a_photo_comes_alive_unless_still(media, tmp_path, cache_dir, astro):
    import lipsync
    from lipsync.io import media as media_io

    _, points = astro
    eyes = slice(int(points[landmarks.BROWS, 1].min()), int(points[29, 1]))
    changes = {}
    for still in (False, True):
        out = str(tmp_path / f"still{still}.mp4")
        lipsync.lip_sync(video_path=media["photo"], audio_path=media["wav"], outfile=out, still=still, quiet=True)
        frames = np.stack(list(media_io.VideoReader(media_io.probe(out))))
        changes[still] = np.abs(frames[:, eyes].astype(int) - frames[0, eyes]).mean(axis=(1, 2, 3)).max()
    assert changes[True] < 1.0 < changes[False]  # the upper face moves only when alive
