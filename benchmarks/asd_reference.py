"""Makes tests/data/asd_reference.npz: inputs and outputs of the published Light-ASD and LR-ASD
code, the fixture that tests/test_asd.py checks lipsync's own implementation against.

Run once, where the published code and its needs are at hand (not in CI):

    git clone https://github.com/Junhua-Liao/Light-ASD /tmp/Light-ASD   # at ed38c232de5e
    git clone https://github.com/Junhua-Liao/LR-ASD /tmp/LR-ASD         # at 1b6dcd2d8fc2
    pip install torch python_speech_features==0.6
    python benchmarks/asd_reference.py --light /tmp/Light-ASD --lr /tmp/LR-ASD \\
        --weights ../shared/models --out tests/data/asd_reference.npz

The inputs are synthetic (a moving blurred pattern and a voiced buzz), so the fixture holds
no one's face or voice.
"""
import argparse
import os
import sys

import cv2
import numpy as np


def synthetic_inputs(n_frames: int = 25, seed: int = 0):
    """(int16 sound of n_frames / 25 s at 16 kHz, faces (n_frames, 112, 112) uint8)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames * 640) / 16000
    voice = np.sin(2 * np.pi * 140 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.05 * rng.standard_normal(t.size)
    sound = (np.clip(voice * 0.4, -1, 1) * 32767).astype(np.int16)
    base = cv2.GaussianBlur(rng.uniform(0, 255, (160, 160)).astype(np.float32), (0, 0), 6)
    base = (base - base.min()) / (base.max() - base.min()) * 200 + 20
    faces = []
    for i in range(n_frames):
        m = np.float32([[1, 0, -20 + 10 * np.sin(i / 4)], [0, 1, -20 + 6 * np.cos(i / 5)]])
        frame = cv2.warpAffine(base, m, (112, 112), borderMode=cv2.BORDER_REFLECT)
        gap = int(8 + 8 * np.sin(i / 3))  # a dark "mouth" that opens and closes
        cv2.ellipse(frame, (56, 80), (22, max(1, gap)), 0, 0, 360, 30, -1)
        faces.append(np.clip(frame, 0, 255).astype(np.uint8))
    return sound, np.stack(faces)


def published_logits(repo: str, weights: str, feats: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Per-frame logits of the published model code, as its Columbia demo computes them."""
    import torch

    for name in [m for m in sys.modules if m == "model" or m.startswith("model.") or m == "loss"]:
        del sys.modules[name]
    sys.path.insert(0, repo)
    try:
        from loss import lossAV
        from model.Model import ASD_Model
    finally:
        sys.path.remove(repo)
    model, head = ASD_Model(), lossAV()
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict({k[len("model."):]: v for k, v in state.items() if k.startswith("model.")})
    head.load_state_dict({k[len("lossAV."):]: v for k, v in state.items() if k.startswith("lossAV.")})
    model.eval(), head.eval()
    with torch.no_grad():
        a = model.forward_audio_frontend(torch.FloatTensor(feats).unsqueeze(0))
        v = model.forward_visual_frontend(torch.FloatTensor(faces).unsqueeze(0))
        return np.asarray(head(model.forward_audio_visual_backend(a, v), labels=None), np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--light", required=True, help="a clone of Junhua-Liao/Light-ASD")
    ap.add_argument("--lr", required=True, help="a clone of Junhua-Liao/LR-ASD")
    ap.add_argument("--weights", required=True, help="folder of light_asd_talkset.model and lr_asd_talkset.model")
    ap.add_argument("--out", default="tests/data/asd_reference.npz")
    args = ap.parse_args()
    import python_speech_features

    sound, faces = synthetic_inputs()
    feats = python_speech_features.mfcc(sound, 16000, numcep=13, winlen=0.025, winstep=0.010)
    feats = feats[:4 * len(faces)].astype(np.float32)
    np.savez_compressed(args.out, sound=sound, faces=faces, mfcc=feats,
                        light=published_logits(args.light, os.path.join(args.weights, "light_asd_talkset.model"), feats, faces),
                        lr=published_logits(args.lr, os.path.join(args.weights, "lr_asd_talkset.model"), feats, faces))
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
