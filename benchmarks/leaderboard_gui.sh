#!/usr/bin/env bash
# The `gui` leaderboard (every MiniWoB++ task with an expert, 8 held-out episodes each):
# SmolLM2-135M as the student, the same model told its expert's next action (the teacher),
# and the student self-distilled on eight click tasks (mmopsd/configs/miniwob_opsd.yaml as it
# ships, one of the comparison's opsd runs: benchmarks/miniwob_compare.sh).
#   bash benchmarks/leaderboard_gui.sh [CHECKPOINT]   # default: runs/miniwob-compare/opsd/seed-$SEED
#   SEED=1 bash benchmarks/leaderboard_gui.sh         # the opsd run of seed 1 (default 0)
#   ROWS=trained bash benchmarks/leaderboard_gui.sh   # some rows only (trained, student, teacher)
# A row already on the board is not measured again (delete it from
# benchmarks/results/leaderboard_gui.json to remeasure). Each row's full table:
# benchmarks/results/leaderboard_gui_<row>.md. An hour or more of 2 cores: run nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
SEED="${SEED:-0}"
CHECKPOINT="${1:-runs/miniwob-compare/opsd/seed-$SEED}"
BOARD=benchmarks/results/leaderboard_gui.md
TRAINED="smollm2-135m + opsd on 8 click tasks (miniwob_opsd.yaml, seed $SEED)"
ROWS="${ROWS:-trained student teacher}"
wanted() { [[ " $ROWS " == *" $1 "* ]]; }
has_row() {
  [ -f "${BOARD%.md}.json" ] && .venv/bin/python -c \
    'import json,sys; sys.exit(sys.argv[2] not in json.load(open(sys.argv[1])))' \
    "${BOARD%.md}.json" "$1"
}
row() {  # NAME LABEL ARGS...
  local name="$1" label="$2"; shift 2
  if has_row "$label"; then echo "== $label: on the board" >&2; return; fi
  echo "== $label" >&2
  .venv/bin/mmopsd eval --suite gui --label "$label" --leaderboard "$BOARD" \
    --markdown "benchmarks/results/leaderboard_gui_$name.md" "$@"
}
# The trained row first: its checkpoint lives in runs/ (gigabytes, kept on no other machine).
if ! wanted trained || has_row "$TRAINED"; then
  :
elif [ -d "$CHECKPOINT" ]; then
  row trained "$TRAINED" --checkpoint "$CHECKPOINT"
else
  echo "no checkpoint at $CHECKPOINT for the trained row: train it first" \
    "(ARMS=opsd SEEDS=$SEED bash benchmarks/miniwob_compare.sh)" >&2
  missing=1
fi
if wanted student; then row student smollm2-135m --model smollm2-135m; fi
if wanted teacher; then
  row teacher "smollm2-135m + privileged" --model smollm2-135m --with-privileged
fi
exit "${missing:-0}"
