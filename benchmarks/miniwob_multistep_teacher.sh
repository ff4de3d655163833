#!/usr/bin/env bash
# What each form of privileged information gives the teacher on the multi-step MiniWoB++
# mixture (mmopsd/configs/miniwob_multistep.yaml), on VALIDATION seeds: the packaged
# SmolLM2-135M told the expert's next action (the answer), the target element in words, the
# expert's plan as subgoals in words, and the student with nothing (the base).
#   bash benchmarks/miniwob_multistep_teacher.sh [FORM ...]   # default: every form
#   MODEL=runs/miniwob-multistep-compare/warm/model LABEL=warm bash benchmarks/miniwob_multistep_teacher.sh
# MODEL: the model whose teacher is measured (default: the packaged SmolLM2, LABEL base); a
# model that already answers in the action format (after a behaviour-cloning warm-up) may
# ground words the base model cannot. One `mmopsd eval` per task and form, each kept as JSON
# under benchmarks/results/miniwob_multistep_teacher/LABEL/FORM/TASK.json: a finished one is
# skipped, so the same command continues a stopped measurement. The table:
# python benchmarks/miniwob_multistep_teacher.py (benchmarks/results/miniwob_multistep_teacher.md).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-smollm2-135m}
LABEL=${LABEL:-base}
OUT=benchmarks/results/miniwob_multistep_teacher/$LABEL
EPISODES=${EPISODES:-8}
TASKS=$(.venv/bin/python - <<'PY'
import yaml
config = yaml.safe_load(open("mmopsd/configs/miniwob_multistep.yaml"))
print(" ".join(t["env"] for t in config["tasks"]))
PY
)
declare -A FORMS=(
  [student]=""
  [answer]='{"kind": "next_action", "template": "The correct action is {value}.\nAction: {value}\nReply with that action."}'
  [target_words]='{"kind": "next_action", "key": "target_words", "template": "The element to act on now: {value}."}'
  [plan_words]='{"kind": "expert_plan", "key": "plan_words", "template": "Steps from here: {value}."}'
)
ORDER=(student answer target_words plan_words)
[ $# -gt 0 ] && ORDER=("$@")
for form in "${ORDER[@]}"; do
  [ -n "${FORMS[$form]+set}" ] || { echo "unknown form $form (${!FORMS[*]})" >&2; exit 2; }
  mkdir -p "$OUT/$form"
done
# Task by task, every form of a task before the next task: a stopped run leaves whole rows.
for env in $TASKS; do
  task=${env#mmopsd/MiniWoB-}; task=${task%-v0}
  for form in "${ORDER[@]}"; do
    file="$OUT/$form/$task.json"
    [ -f "$file" ] && continue
    teacher=()
    [ -n "${FORMS[$form]}" ] && teacher=(--with-privileged --provider reference --provider-kwargs "${FORMS[$form]}")
    echo "== $task $form"
    .venv/bin/mmopsd eval --model "$MODEL" --env "$env" --split validation --episodes "$EPISODES" \
      --max-turns 8 --max-new-tokens 24 "${teacher[@]}" --out "$file.tmp" > /dev/null
    mv "$file.tmp" "$file"
  done
done
.venv/bin/python benchmarks/miniwob_multistep_teacher.py
