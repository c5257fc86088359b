#!/usr/bin/env bash
# DANet alignment ablation at equal budget on the v2 recipe (danet train-stream): for each variant
#   none (LAVT skeleton) / affinity only / agent only / both (the reconstructed dual alignments)
# and each seed, the same stream, steps and wall budget; then the held-out evaluations of the model card
# (benchmarks/danet_eval_v2.sh). Resumable: a variant/seed whose run folder holds state.pt continues.
# Usage: MINUTES=30 STEPS=2000 SEEDS="0 1 2" bash benchmarks/danet_ablation.sh [variant ...]
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${MINUTES:-30}; STEPS=${STEPS:-2000}; SEEDS=${SEEDS:-"0 1 2"}
declare -A OVERRIDES=(
  [none]="--set alignment.affinity.enabled=false --set alignment.agent.enabled=false"
  [affinity]="--set alignment.agent.enabled=false"
  [agent]="--set alignment.affinity.enabled=false"
  [both]=""
)
export HF_HUB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE
for v in ${@:-none affinity agent both}; do
  for seed in $SEEDS; do
    run="runs/ablation/$v-seed$seed"
    # shellcheck disable=SC2086  # the overrides are separate words on purpose
    .venv/bin/danet train-stream --config lite --out "$run" --max-steps "$STEPS" --max-minutes "$MINUTES" \
      --lr 2e-4 --warmup-steps 150 --seed "$seed" ${OVERRIDES[$v]}
    bash benchmarks/danet_eval_v2.sh "$run/last.pt" "$run/eval"
  done
done
