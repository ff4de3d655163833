#!/usr/bin/env bash
# Every MiniWoB++ number of the docs, in the order they were made: the comparison of methods
# (benchmarks/miniwob_compare.sh), the gui leaderboard's three rows
# (benchmarks/leaderboard_gui.sh), then the rest of the recipe search
# (benchmarks/miniwob_recipe.sh). Each part skips what is finished and resumes what was
# stopped, so the same command continues after a kill:
#   setsid nohup bash benchmarks/miniwob_evidence.sh > logs/evidence.log 2>&1 &
# Hours of 2 cores: run nothing else meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
LAMBDA="${LAMBDA:?set LAMBDA, the teacher share the recipe search chose}"
export LAMBDA
bash benchmarks/miniwob_compare.sh
bash benchmarks/leaderboard_gui.sh
bash benchmarks/miniwob_recipe.sh lr2e-5 t1.0 topk jsd lora
