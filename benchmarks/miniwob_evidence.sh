#!/usr/bin/env bash
# Every MiniWoB++ number of the docs: the opsd run of seed 0 and the gui leaderboard's row of
# its checkpoint (benchmarks/leaderboard_gui.sh), the rest of the comparison of methods
# (benchmarks/miniwob_compare.sh), the leaderboard's base student and teacher rows, then the
# rest of the recipe search (benchmarks/miniwob_recipe.sh). Runs are 35-55 minutes each. Each part skips what is finished and resumes what was
# stopped, so the same command continues after a kill:
#   setsid nohup bash benchmarks/miniwob_evidence.sh > logs/evidence.log 2>&1 &
# Hours of 2 cores: run nothing else meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
LAMBDA="${LAMBDA:?set LAMBDA, the teacher share the recipe search chose}"
export LAMBDA
# opsd of seed 0 first: the leaderboard's trained row is its checkpoint
ONLY_OPSD=1 SEEDS=0 bash benchmarks/miniwob_compare.sh
ROWS=trained bash benchmarks/leaderboard_gui.sh || echo "== no trained row on the board" >&2
bash benchmarks/miniwob_compare.sh
bash benchmarks/leaderboard_gui.sh || echo "== the gui leaderboard lacks a row" >&2
bash benchmarks/miniwob_recipe.sh lr2e-5 t1.0 topk jsd lora
