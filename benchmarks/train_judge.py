"""Trains evaluate.py's offset judge (lipsync/eval/syncnet.py) on talking-face videos.

    python benchmarks/train_judge.py --data ../shared/data/train --out lipsync/assets/sync_judge.npz

Two rounds: the first learns from the clips as they are; then each clip's own offset is
measured with it, clips with a clear one get their sound shifted into sync, and the second
round learns again from the start. A few clips (other speakers) are held out to report the
offset accuracy; see lipsync/assets/SYNC_JUDGE.md for the data and the figures.
"""
import argparse
import glob
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lipsync.eval import asd, avsync, syncnet  # noqa: E402
from lipsync.face.track import TrackSettings, track_media  # noqa: E402
from lipsync.io import audio as audio_lib  # noqa: E402
from lipsync.io.media import VideoReader, probe  # noqa: E402
from lipsync.progress import Progress  # noqa: E402

K = 15  # candidate offsets either way
ANCHORS = 16  # video windows per segment
SEGMENTS = 8  # segments per step
SCALE = 10.0  # cosine -> logit


def load(path: str):
    info = probe(path)
    track = track_media(info, info.fps, TrackSettings(), progress=Progress(True))
    crops = avsync.face_crops(VideoReader(info, syncnet.FPS, exact=False), track.landmarks, info.fps)
    wav = audio_lib.load_audio(path)
    n = min(len(crops), int(len(wav) / 16000 * syncnet.FPS))
    return {"name": os.path.basename(path), "crops": crops[:n], "wav": wav, "n": n,
            "video": syncnet.mouth_windows(crops[:n]), "shift": 0}


def with_sound(clip):
    """The clip's sound windows, with its measured offset taken out."""
    shift = clip["shift"]
    wav = clip["wav"]
    samples = int(round(shift * 16000 / syncnet.FPS))
    if samples > 0:
        wav = wav[samples:]
    elif samples < 0:
        wav = np.concatenate([np.zeros(-samples, np.float32), wav])
    clip["sound"] = syncnet.sound_windows(wav, clip["n"])


def train(clips, steps: int, seed: int, log_every: int = 100):
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    judge = syncnet.SyncJudge(seed=seed)
    optimiser = tf.keras.optimizers.AdamW(learning_rate=tf.keras.optimizers.schedules.CosineDecay(1e-3, steps), weight_decay=1e-4)
    variables = judge.visual.trainable_variables + judge.audio.trainable_variables
    usable = [c for c in clips if c["n"] >= ANCHORS + 2 * K + 1]
    weights = np.array([c["n"] for c in usable], float)
    weights /= weights.sum()
    span = ANCHORS + 2 * K
    # row a of a segment's logits may only pick candidates a .. a + 2K (its own +-K)
    band = np.full((ANCHORS, span), -1e9, np.float32)
    for a in range(ANCHORS):
        band[a, a:a + 2 * K + 1] = 0
    band = tf.constant(band)
    target = tf.constant(np.tile(np.arange(ANCHORS) + K, SEGMENTS))

    @tf.function
    def step(video, sound):
        with tf.GradientTape() as tape:
            v = judge.visual(video, training=True)  # (S*A, 128)
            s = judge.audio(sound, training=True)  # (S*span, 128)
            v = tf.reshape(v, (SEGMENTS, ANCHORS, -1))
            s = tf.reshape(s, (SEGMENTS, span, -1))
            logits = SCALE * tf.einsum("bae,bce->bac", v, s) + band
            loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(
                target, tf.reshape(logits, (SEGMENTS * ANCHORS, span)), from_logits=True))
        optimiser.apply_gradients(zip(tape.gradient(loss, variables), variables))
        hit = tf.reduce_mean(tf.cast(tf.argmax(tf.reshape(logits, (-1, span)), 1, output_type=tf.int32) == tf.cast(target, tf.int32), tf.float32))
        return loss, hit

    start, losses, hits = time.time(), [], []
    for i in range(steps):
        video, sound = [], []
        for c in rng.choice(len(usable), SEGMENTS, p=weights):
            clip = usable[c]
            t0 = rng.integers(K, clip["n"] - ANCHORS - K + 1)
            v = clip["video"][t0:t0 + ANCHORS]
            if rng.random() < 0.5:
                v = v[:, :, ::-1]
            video.append(v)
            sound.append(clip["sound"][t0 - K:t0 + ANCHORS + K])
        loss, hit = step(np.concatenate(video), np.concatenate(sound))
        losses.append(float(loss))
        hits.append(float(hit))
        if (i + 1) % log_every == 0:
            print(f"  step {i + 1}: loss {np.mean(losses[-log_every:]):.3f}, exact pick {np.mean(hits[-log_every:]):.2f} "
                  f"({time.time() - start:.0f} s)", flush=True)
    return judge


def offset(judge, clip, sound_shift_frames: int = 0):
    wav = clip["wav"]
    samples = int(round(sound_shift_frames * 16000 / syncnet.FPS))
    wav = np.concatenate([np.zeros(samples, np.float32), wav]) if samples >= 0 else wav[-samples:]
    scores = judge.shift_scores(clip["crops"], wav)
    k = max(scores, key=scores.get)
    return k, scores[k] - float(np.median(list(scores.values())))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", required=True, help="videos of people speaking, or folders of them")
    ap.add_argument("--holdout", nargs="*", default=["pcavs_vox-00015.mp4", "face2facedemo_obama-weekly-address.mp4",
                                                      "eamm_mead-m030-sad.mp4"], help="clips left out to report accuracy")
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=1500, help="training steps per round")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min_confidence", type=float, default=0.1, help="a clip's offset is taken out above this")
    args = ap.parse_args()
    paths = []
    for p in args.data:
        paths += sorted(glob.glob(os.path.join(p, "*.mp4"))) if os.path.isdir(p) else [p]
    cache = args.out + ".clips.npz"  # the decoded clips, for another run with other settings
    if os.path.exists(cache):
        with np.load(cache, allow_pickle=False) as data:
            clips = [{"name": str(data[f"name{i}"]), "crops": data[f"crops{i}"], "wav": data[f"wav{i}"],
                      "n": int(len(data[f"crops{i}"])), "shift": 0, "video": syncnet.mouth_windows(data[f"crops{i}"])}
                     for i in range(int(data["count"]))]
    else:
        clips = [load(p) for p in paths]
        np.savez(cache, count=len(clips), **{f"{k}{i}": c[k] for i, c in enumerate(clips) for k in ("name", "crops", "wav")})
    for c in clips:
        with_sound(c)
    held = [c for c in clips if c["name"] in args.holdout]
    train_clips = [c for c in clips if c["name"] not in args.holdout]
    print(f"{len(train_clips)} clips ({sum(c['n'] for c in train_clips)} frames at 25 fps) to train on, "
          f"{len(held)} held out", flush=True)
    judge = train(train_clips, args.steps, args.seed)
    print("offsets found in the training clips (round 1):")
    for c in train_clips:
        k, conf = offset(judge, c)
        if conf >= args.min_confidence and k != 0:
            c["shift"] = k
            with_sound(c)
        print(f"  {c['name'][:40]:40} {k:+3d} (confidence {conf:.2f}){' taken out' if c['shift'] else ''}")
    judge = train(train_clips, args.steps, args.seed)
    print("held-out clips: offset found for the sound delayed by 0 / +5 / +10 / -5 frames")
    for c in held:
        print(f"  {c['name'][:40]:40} " + " ".join(f"{offset(judge, c, d)[0]:+3d}" for d in (0, 5, 10, -5)))
    np.savez_compressed(args.out, **judge.get_weights())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
