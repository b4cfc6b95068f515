"""The Wav2Lip path: the generator's layout and parity with the published model, the
checkpoint loader, extract_frames.py and lip_sync_wav2lip.py end to end. Checkpoints are
made here with random weights in the official layout (the real ones cannot be shipped)."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

from conftest import ffmpeg, shared_clip, speechlike, write_wav
from test_cli_errors import assert_clean_failure, run_script

torch = pytest.importorskip("torch")

from lipsync.errors import InputError, MissingBackendError  # noqa: E402
from lipsync.io.frames import FrameFolder, extract_frames  # noqa: E402
from lipsync.generators import wav2lip  # noqa: E402


def _randomised(module, seed=0):
    """Random weights and batch-norm statistics, so that every layer matters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, value in module.state_dict().items():
            if name.endswith("running_var"):
                value.copy_(0.5 + torch.rand(value.shape, generator=gen))
            elif name.endswith("running_mean"):
                value.copy_(0.1 * torch.randn(value.shape, generator=gen))
            elif value.is_floating_point():
                value.copy_(value + 0.01 * torch.randn(value.shape, generator=gen))
    return module


def _save_official(module, path):
    state = {"module." + k: v for k, v in module.state_dict().items()}
    torch.save({"state_dict": state, "optimizer": {}, "global_step": 100, "global_epoch": 1}, str(path))
    return str(path)


@pytest.fixture(scope="module")
def official_checkpoint(tmp_path_factory):
    """A checkpoint in the official wav2lip_gan.pth layout, random weights."""
    torch.manual_seed(0)
    module = _randomised(wav2lip.build_generator())
    return _save_official(module, tmp_path_factory.mktemp("ckpt") / "wav2lip_gan.pth"), module


def _inputs(batch=3, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.uniform(-4, 4, (batch, 1, 80, 16)).astype(np.float32),
            rng.uniform(0, 1, (batch, 6, 96, 96)).astype(np.float32))


def test_generator_has_the_official_layout():
    state = wav2lip.build_generator().state_dict()
    assert len(state) == 352
    assert tuple(state["face_encoder_blocks.0.0.conv_block.0.weight"].shape) == (16, 6, 7, 7)
    assert tuple(state["audio_encoder.3.conv_block.0.weight"].shape) == (64, 32, 3, 3)
    assert tuple(state["face_decoder_blocks.1.0.conv_block.0.weight"].shape) == (1024, 512, 3, 3)  # transposed
    assert tuple(state["output_block.1.weight"].shape) == (3, 32, 1, 1)
    assert "face_decoder_blocks.6.2.conv_block.1.running_var" in state
    n_params = sum(v.numel() for k, v in state.items() if not k.endswith(("running_mean", "running_var",
                                                                               "num_batches_tracked")))
    assert 36_000_000 < n_params < 37_000_000


def test_output_shape_and_range(official_checkpoint):
    path, _ = official_checkpoint
    model = wav2lip.load_wav2lip(path, device="cpu")
    out = model(*_inputs())
    assert out.shape == (3, 3, 96, 96) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_parity_with_the_published_model(tmp_path):
    reference = pytest.importorskip("wyn_wav2lip.models.wav2lip")  # the published code, installed by run.sh test
    ref = _randomised(reference.Wav2Lip(), seed=3).eval()
    path = _save_official(ref, tmp_path / "wav2lip.pth")
    mel, face = _inputs(batch=4, seed=2)
    with torch.no_grad():
        expected = ref(torch.from_numpy(mel), torch.from_numpy(face)).numpy()
    got = wav2lip.load_wav2lip(path, device="cpu")(mel, face)
    assert np.abs(got - expected).max() <= 1e-4
    assert expected.std() > 1e-3  # the comparison is not between two constant images


def test_bare_state_dict_loads_the_same(official_checkpoint, tmp_path):
    path, module = official_checkpoint
    bare = tmp_path / "bare.pth"
    torch.save(module.state_dict(), str(bare))
    mel, face = _inputs()
    a = wav2lip.load_wav2lip(path, device="cpu")(mel, face)
    b = wav2lip.load_wav2lip(str(bare), device="cpu")(mel, face)
    np.testing.assert_array_equal(a, b)


def test_missing_checkpoint_names_the_path_and_the_official_files(tmp_path):
    missing = str(tmp_path / "nowhere" / "wav2lip_gan.pth")
    with pytest.raises(MissingBackendError) as err:
        wav2lip.load_wav2lip(missing)
    text = str(err.value)
    assert missing in text and "wav2lip.pth" in text and "wav2lip_gan.pth" in text and "checkpoints/" in text


class _Payload:
    """Pickles to a call that would create a file: what a malicious checkpoint does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_a_checkpoint_cannot_run_code(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "payload": _Payload(str(marker))}, str(path))
    with pytest.raises(InputError, match="not a loadable PyTorch weights file"):
        wav2lip.load_wav2lip(str(path))
    assert not marker.exists()


def test_wrong_checkpoints_are_refused(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(InputError, match="not a loadable PyTorch weights file"):
        wav2lip.load_wav2lip(str(junk))
    other = tmp_path / "syncnet.pth"
    torch.save({"state_dict": {"face_encoder.0.conv_block.0.weight": torch.zeros(32, 15, 7, 7)}}, str(other))
    with pytest.raises(InputError, match="SyncNet"):
        wav2lip.load_wav2lip(str(other))
    state = wav2lip.build_generator().state_dict()
    state["output_block.1.weight"] = torch.zeros(3, 32, 3, 3)
    shaped = tmp_path / "shaped.pth"
    torch.save(state, str(shaped))
    with pytest.raises(InputError, match="output_block.1.weight has shape"):
        wav2lip.load_wav2lip(str(shaped))


def test_extract_frames_writes_frames_index_and_sound(media, tmp_path):
    src = tmp_path / "talk.mp4"
    subprocess.run([ffmpeg(), "-loglevel", "error", "-i", media["video"], "-i", media["wav"], "-map", "0:v",
                    "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-shortest", str(src)], check=True)
    out = tmp_path / "frames"
    proc = run_script("extract_frames.py", "--video_path", str(src), "--output_dir", str(out))
    assert proc.returncode == 0, proc.stderr
    index = json.loads((out / "frames.json").read_text())
    assert index["frame_count"] == 50 and index["fps"] == 25 and (index["width"], index["height"]) == (256, 256)
    assert index["audio"] == "audio.wav" and index["source"].endswith("talk.mp4")
    names = sorted(os.listdir(out))
    assert names[0] == "000000.png" and names[49] == "000049.png" and "audio.wav" in names
    assert not [n for n in names if n.startswith(".")]  # no staging folder left
    folder = FrameFolder(str(out))
    assert len(folder) == 50 and folder.fps == 25 and folder.audio_path.endswith("audio.wav")

    again = run_script("extract_frames.py", "--video_path", str(src), "--output_dir", str(out))
    assert_clean_failure(again, str(out), "already holds", "allow overwriting")
    replaced = extract_frames(video_path=media["video"], output_dir=str(out), fmt="jpg", overwrite=True, quiet=True)
    names = sorted(os.listdir(out))
    assert replaced.audio is None and "audio.wav" not in names  # the old sound went with the old frames
    assert names[0] == "000000.jpg" and not [n for n in names if n.endswith(".png")]


def test_extract_frames_bad_input(media, tmp_path):
    proc = run_script("extract_frames.py", "--video_path", media["wav"], "--output_dir", str(tmp_path / "f"))
    assert_clean_failure(proc, media["wav"], "no video stream")
    proc = run_script("extract_frames.py", "--video_path", media["video"], "--output_dir", str(tmp_path / "g"),
                      "--format", "jpg", "--quality", "0")
    assert_clean_failure(proc, "quality 0", "1 and 100")
    assert not (tmp_path / "g").exists() or not os.listdir(tmp_path / "g")


def test_missing_checkpoint_from_the_script_is_one_line(media, tmp_path):
    frames = tmp_path / "frames"
    extract_frames(video_path=media["video"], output_dir=str(frames), quiet=True)
    missing = str(tmp_path / "checkpoints" / "wav2lip_gan.pth")
    proc = run_script("lip_sync_wav2lip.py", "--audio_path", media["wav"], "--frames_dir", str(frames),
                      "--checkpoint_path", missing, "--outfile", str(tmp_path / "o.mp4"), "--quiet")
    assert_clean_failure(proc, missing, "wav2lip.pth", "wav2lip_gan.pth", "checkpoints/")
    assert not (tmp_path / "o.mp4").exists()


def _frames_of(path):
    from lipsync.io.media import VideoReader, probe

    return [f.copy() for f in VideoReader(probe(path))]


def test_lip_sync_model_wav2lip_on_a_video(media, official_checkpoint, tmp_path, cache_dir):
    path, _ = official_checkpoint
    out = tmp_path / "w2l.mp4"
    proc = run_script("lip_sync.py", "--video_path", media["video"], "--audio_path", media["short_wav"],
                      "--model", "wav2lip", "--checkpoint_path", path, "--outfile", str(out), "--quiet",
                      env_extra={"LIPSYNC_CACHE_DIR": str(cache_dir)})
    assert proc.returncode == 0, proc.stderr
    frames, source = _frames_of(str(out)), _frames_of(media["video"])
    assert len(frames) == 25
    diff = np.abs(frames[10].astype(int) - source[10].astype(int)).max(axis=2)
    above, mouth = diff[:60].mean(), diff[140:200, 90:170].mean()
    assert above < 5  # above the face: untouched but for the codec
    assert mouth > 2 * above + 3  # the mouth region was regenerated


def test_extract_then_wav2lip_on_shared_clip(official_checkpoint, tmp_path):
    clip = shared_clip("video", "retalk_2.mp4")
    path, _ = official_checkpoint
    frames = tmp_path / "frames"
    proc = run_script("extract_frames.py", "--video_path", clip, "--output_dir", str(frames), "--quiet")
    assert proc.returncode == 0, proc.stderr
    sound = write_wav(str(tmp_path / "line.wav"), speechlike(2.0), 16000)
    out = tmp_path / "dub.mp4"
    proc = run_script("lip_sync_wav2lip.py", "--audio_path", sound, "--frames_dir", str(frames),
                      "--checkpoint_path", path, "--outfile", str(out), "--resize_factor", "2", "--quiet")
    assert proc.returncode == 0, proc.stderr
    from lipsync.io.media import probe

    info = probe(str(out))
    assert info.has_audio and (info.width, info.height) == (422, 422)
    assert abs(info.duration - 2.0) < 0.1
    assert len(_frames_of(str(out))) == 50


def test_lip_sync_wav2lip_bad_frames_dir(media, tmp_path):
    missing = str(tmp_path / "no_frames")
    proc = run_script("lip_sync_wav2lip.py", "--audio_path", media["wav"], "--frames_dir", missing, "--quiet")
    assert_clean_failure(proc, missing, "no such frames folder")
    plain = tmp_path / "plain"
    plain.mkdir()
    import cv2

    from conftest import astronaut_face

    cv2.imwrite(str(plain / "0001.png"), astronaut_face(64))
    proc = run_script("lip_sync_wav2lip.py", "--audio_path", media["wav"], "--frames_dir", str(plain), "--quiet")
    assert_clean_failure(proc, str(plain), "frames.json", "frame rate")
