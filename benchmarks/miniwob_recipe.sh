#!/usr/bin/env bash
# The MiniWoB++ recipe search: mmopsd/configs/miniwob_opsd.yaml, one variant at a time
# (rollout temperature, learning rate, LoRA, loss, the teacher's share of episodes λ).
#   bash benchmarks/miniwob_recipe.sh [VARIANT ...]     # default: every variant, in order
# Each run lives in runs/miniwob-recipe/VARIANT and resumes from its last checkpoint when
# started again (a finished run is skipped, as is one the committed table holds finished), so
# the same command continues a stopped search.
# The table of every finished or stopped run: benchmarks/results/miniwob_recipe.md
# (python benchmarks/miniwob_recipe.py). Hours of 2 cores: run nothing else meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
# Three times the weight for tasks 2, 3, 6 and 7 of the config (click-button, click-link,
# click-widget, click-tab).
WEAK3="--set tasks.2.weight=3 --set tasks.3.weight=3 --set tasks.6.weight=3 --set tasks.7.weight=3"
declare -A VARIANTS=(
  # base, weak3 and words ran 48 steps, before the config settled on 32
  [base]="--set optimizer.steps=48"
  # these five ran 16 steps (evaluated at 0 and 16), half the config's budget, so that all
  # five fit one sitting: the learning rate is constant, so each is read against the others'
  # step 16
  [lr2e-5]="--set optimizer.lr=2e-5 --set optimizer.steps=16"
  [t1.0]="--set rollout.temperature=1.0 --set optimizer.steps=16"
  [lora]="--set model.lora=true --set optimizer.lr=2e-4 --set optimizer.steps=16"
  [topk]="--set method.loss_kwargs.top_k=20 --set optimizer.steps=16"
  [jsd]="--set method.loss=jsd --set optimizer.steps=16"
  [lambda0.25]="--set method.teacher_share=0.25"
  [lambda0.5]="--set method.teacher_share=0.5"
  # three times the episodes for the tasks base left weakest (matching a quoted word to an
  # element's number: click-button 0.12, click-link 0.19, click-widget 0.19, click-tab 0.25)
  [weak3]="$WEAK3 --set evaluation.every=24 --set optimizer.steps=48"
  # base's config once the grammar has click_text("words") and the experts click by the
  # task's words (click-button, click-link, click-tab, click-test-2): base ran before that
  [words]="--set optimizer.steps=48"
)
# A variant the committed table holds as finished (its run dir kept on another machine)
finished_in_table() {
  .venv/bin/python -c 'import json,sys; sys.exit(not any(r["name"] == sys.argv[2] and
    r["finished"] for r in json.load(open(sys.argv[1]))))' \
    benchmarks/results/miniwob_recipe.json "$1"
}
ORDER=(base lambda0.5 weak3 words lambda0.25 lr2e-5 t1.0 topk jsd lora)
[ "$#" -gt 0 ] && ORDER=("$@")
for name in "${ORDER[@]}"; do
  [ -n "${VARIANTS[$name]+x}" ] || { echo "unknown variant $name; known: ${!VARIANTS[*]}" >&2; exit 2; }
  out="runs/miniwob-recipe/$name"
  if [ -f "$out/summary.json" ] || finished_in_table "$name"; then
    echo "== $name: done" >&2; continue
  fi
  echo "== $name" >&2
  # shellcheck disable=SC2086
  # one evaluation cache for every variant: the untrained model's evaluations (7 minutes)
  # are computed by the first variant only (a variant that changes them, as LoRA's weights
  # do, computes its own)
  .venv/bin/mmopsd train --config mmopsd/configs/miniwob_opsd.yaml --set "run.out_dir=$out" \
    --set evaluation.cache=../eval_cache.json ${VARIANTS[$name]} --quiet
  .venv/bin/python benchmarks/miniwob_recipe.py
  cp "$out/curve.png" "benchmarks/results/miniwob_recipe_${name}_curve.png"
done
