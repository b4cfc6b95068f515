#!/usr/bin/env bash
# The bad-input cases of issue 15 through the scripts of a checkout: one line per case, the
# last line the script printed. Run it on two checkouts to compare (e.g. a worktree of an
# older commit, then this one):
#   bash benchmarks/bad_input.sh /path/to/checkout > cases.txt
set -u
R=$(cd "${1:-.}" && pwd)
HERE=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d); cd "$W"
export LIPSYNC_CACHE_DIR=$W/cache PYTHONPATH=$HERE/tests
python - <<'PY'
import cv2, numpy as np
from conftest import astronaut_face, encode_frames, moving_face_frames, speechlike, write_wav
encode_frames("face.mp4", moving_face_frames(50), 25)
cv2.imwrite("face.png", astronaut_face())
write_wav("short.wav", speechlike(1.0, seed=1), 16000)
write_wav("long.wav", np.tile(speechlike(3.0), 20), 16000)
PY
L="python $R/lip_sync.py --video_path face.mp4 --audio_path short.wav --personalize off"
case_() { local name=$1; shift; echo "$name | $("$@" 2>&1 | tr '\r' '\n' | grep -v '^\s*$' | grep -v '/s\]' | tail -1 | cut -c1-160)"; }
case_ "10 outfile o" $L --outfile o --quiet
case_ "10 outfile o.txt" $L --outfile o.txt --quiet
case_ "10 outfile o.gif" $L --outfile o.gif --quiet
case_ "11 240-character outfile" $L --outfile "$(printf 'a%.0s' $(seq 236)).mp4"
cp face.mp4 "$(printf 'v%.0s' $(seq 250)).mp4"; mkdir sub; cd sub
case_ "11 250-character input name" python $R/lip_sync.py --video_path ../vvvvvvvvvv*.mp4 --audio_path ../short.wav --personalize off
if [ -d output ]; then echo "   output/ holds: $(ls output | cut -c1-12)"; else echo "   no output/ folder"; fi; cd ..
case_ "12 --fps nan" $L --outfile x.mp4 --fps nan --quiet
case_ "12 --personalize_seconds nan" $L --outfile x.mp4 --personalize_seconds nan
case_ "12 --face_index 5" $L --outfile x.mp4 --face_index 5 --quiet
case_ "12 --box outside the frame" $L --outfile x.mp4 --box 0 100 5000 6000
printf "video,audio,outfile\nface.mp4,short.wav,face.mp4\n" > self.csv
case_ "12 batch job writing its own video" python $R/lip_sync.py --batch self.csv
cp face.mp4 ./-x.mp4
case_ "14 --video_path -x.mp4" python $R/lip_sync.py --video_path -x.mp4 --audio_path short.wav
mkdir dd
case_ "9 tts --output a folder" python $R/tts.py --text hi --output dd
case_ "9 evaluate --json a folder" python $R/evaluate.py --video face.mp4 --json dd --quiet
case_ "9 panel --out a file" python $R/evaluate.py panel face.mp4 --out short.wav
echo '[1,2]' > list.json; case_ "9 tally: key a list" python $R/evaluate.py tally list.json --key list.json
echo '{"panel_id": "x"}' > k2.json; echo '{"panel_id": "x", "scores": {}}' > s0.json
case_ "9 tally: key without clips" python $R/evaluate.py tally s0.json --key k2.json
echo '{"panel_id": "x", "clips": {"A": "a.mp4"}}' > k.json
echo '{"panel_id": "x", "scores": {"A": {"sync": true, "naturalness": true}}}' > s.json
case_ "9 tally: a score of true" python $R/evaluate.py tally s.json --key k.json
python - "$R" <<'PY'
import json, sys, numpy as np
arrays = dict(np.load(f"{sys.argv[1]}/lipsync/assets/sync_model.npz"))
meta = json.loads(str(arrays["meta"]))
for name, change in [("list", lambda m: [m]), ("members0", lambda m: {**m, "members": 0}),
                     ("members_text", lambda m: {**m, "members": "x"})]:
    np.savez(f"ck_{name}.npz", **{**arrays, "meta": np.array(json.dumps(change(meta)))})
key = sorted(k for k in arrays if k.startswith("m0_"))[0]
np.savez("ck_nan.npz", **{**arrays, key: np.full_like(arrays[key], np.nan)})
PY
for n in list members0 members_text nan; do case_ "8 checkpoint $n" $L --outfile x.mp4 --checkpoint_path ck_$n.npz --quiet; done
mkdir sig
python $R/lip_sync.py --video_path face.png --audio_path long.wav --outfile sig/o.mp4 --quiet 2> sig.err & P=$!
for i in $(seq 600); do ls -a sig | grep -q partial && break; sleep 0.1; done
kill -TERM $P; wait $P; rc=$?
echo "5 SIGTERM during the render | exit $rc | $(tail -1 sig.err | cut -c1-80) | left: $(ls -A sig)"
rm -rf "$W"
