#!/usr/bin/env bash
# The MiniWoB++ comparison on mmopsd/configs/miniwob_opsd.yaml: opsd, opsd with the teacher
# playing a share LAMBDA of the episodes (the best of the recipe search), sft_teacher and grpo
# (groups of 4 episodes per page), each on the same episodes, seeds 0 and 1.
#   bash benchmarks/miniwob_compare.sh            # LAMBDA=0.5 by default
# Runs go one after another in runs/miniwob-compare/<arm>/seed-<s>; a killed comparison
# continues where it stopped with the same command. Results: runs/miniwob-compare/compare.md,
# copied to benchmarks/results/compare_miniwob.{md,json,png}. Hours of 2 cores: run nothing
# else meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
LAMBDA="${LAMBDA:-0.5}"
OUT=runs/miniwob-compare
.venv/bin/mmopsd compare --config mmopsd/configs/miniwob_opsd.yaml --methods opsd,sft_teacher \
  --arm "opsd-lambda$LAMBDA" method=opsd "teacher_share=$LAMBDA" \
  --arm grpo method=grpo group_size=4 \
  --seeds 0,1 --out "$OUT" --quiet "$@"
pkill -f chromedriver || true
for ext in md json png; do cp "$OUT/compare.$ext" "benchmarks/results/compare_miniwob.$ext"; done
