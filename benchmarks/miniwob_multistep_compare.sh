#!/usr/bin/env bash
# The multi-step MiniWoB++ comparison (mmopsd/configs/miniwob_multistep.yaml), in stages:
#   bash benchmarks/miniwob_multistep_compare.sh warm      # the shared warm-up
#   bash benchmarks/miniwob_multistep_compare.sh teacher   # what each form gives its teacher
# warm: WARM_STEPS steps of `bc_expert` from the packaged SmolLM2 (the scripted experts play,
#   the student learns their actions), evaluated on validation seeds, exported to
#   runs/miniwob-multistep-compare/warm/model. The base model never answers in the action
#   format on these pages (every reply invalid), so no teacher it could be shown words to can
#   act on them either; every arm starts here and its budget counts these steps.
# teacher: benchmarks/miniwob_multistep_teacher.sh on the warm model (validation seeds).
# The arms (bc_expert continued, dagger, sft_teacher, opsd told the answer, opsd told the best
#   form in words, the best lever, grpo), each from the warm model, come as a further stage
#   once those choices are made on validation seeds.
# Every stage resumes where it stopped with the same command. Hours of 2 cores: run nothing
# else meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=mmopsd/configs/miniwob_multistep.yaml
OUT=runs/miniwob-multistep-compare
WARM_STEPS=${WARM_STEPS:-8}
WARM=$OUT/warm

warm() {
  [ -f "$WARM/model/config.json" ] && { echo "== $WARM/model is there"; return 0; }
  .venv/bin/mmopsd train --config "$CONFIG" --quiet \
    --set method.name=bc_expert --set "optimizer.steps=$WARM_STEPS" \
    --set evaluation.every=0 --set evaluation.episodes=4 --set evaluation.teacher=false \
    --set run.export=merge --set run.save_every=4 --set "run.out_dir=$WARM" \
    --set run.seed=0
  mkdir -p benchmarks/results/miniwob_multistep_compare
  cp "$WARM/metrics.jsonl" benchmarks/results/miniwob_multistep_compare/warm_metrics.jsonl
}

teacher() {
  [ -f "$WARM/model/config.json" ] || { echo "no warm model: run the warm stage first" >&2; exit 2; }
  MODEL="$WARM/model" LABEL=warm bash benchmarks/miniwob_multistep_teacher.sh "$@"
}

case "${1:-}" in
  warm) warm ;;
  teacher) shift; teacher "$@" ;;
  *) echo "usage: $0 warm | teacher [FORM ...]" >&2; exit 2 ;;
esac
