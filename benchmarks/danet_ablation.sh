#!/usr/bin/env bash
# DANet alignment ablation at equal budget: the same data, seed, steps and batch for
#   none (LAVT skeleton) / affinity only / agent only / both (the reconstructed dual alignments),
# then each variant evaluated on the held-out split and its synthetic distractor subset.
# Usage: bash benchmarks/danet_ablation.sh [variant ...]   (default: all four; STEPS=300)
# Needs the benchmark data: .venv/bin/danet benchmark-data --out data/benchmark
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-300}
declare -A OVERRIDES=(
  [none]="--set alignment.affinity.enabled=false --set alignment.agent.enabled=false"
  [affinity]="--set alignment.agent.enabled=false"
  [agent]="--set alignment.affinity.enabled=false"
  [both]=""
)
for variant in "${@:-none affinity agent both}"; do
  for v in $variant; do
    # shellcheck disable=SC2086  # the overrides are separate words on purpose
    OMP_NUM_THREADS=1 .venv/bin/danet train --config lite --data data/benchmark --out "runs/ablation/$v" \
      --max-steps "$STEPS" --batch-size 8 --no-val --seed 0 --checkpoint-kind trainable ${OVERRIDES[$v]}
    OMP_NUM_THREADS=1 .venv/bin/danet eval --checkpoint "runs/ablation/$v/last.pt" --data data/benchmark \
      --split test --subset all --subset synthetic-distractor --json > "runs/ablation/$v/test.json"
  done
done
