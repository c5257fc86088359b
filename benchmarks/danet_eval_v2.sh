#!/usr/bin/env bash
# Every held-out number of the DANet-lite v2 model card, for one checkpoint (LAVT metric semantics).
# Usage: bash benchmarks/danet_eval_v2.sh CHECKPOINT OUT_DIR
# Writes the evaluation sets first when they are missing (all GENERATED expressions, see each DATASET.md):
#   data/benchmark      the v1 referring benchmark (training renderer; its synthetic distractor test scenes)
#   data/heldout        the held-out renderer (never used in training), canonical and paraphrased sentences
#   data/real-heldout   the SpaceNet block and NEON tiles kept out of training ("all buildings", "all trees")
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKPOINT=${1:?checkpoint}; OUT=${2:?output folder}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1
[ -f data/benchmark/subsets.json ] || .venv/bin/danet benchmark-data --out data/benchmark
[ -f data/heldout/subsets.json ] || .venv/bin/danet heldout-data --out data/heldout
[ -f data/real-heldout/subsets.json ] || .venv/bin/danet real-heldout-data --out data/real-heldout
.venv/bin/danet eval --checkpoint "$CHECKPOINT" --data data/benchmark --split test --json \
  --subset synthetic-distractor --subset synthetic --subset all > "$OUT/benchmark.json"
.venv/bin/danet eval --checkpoint "$CHECKPOINT" --data data/heldout --split test --json \
  --subset heldout --subset heldout-paraphrased --subset heldout-distractor > "$OUT/heldout.json"
.venv/bin/danet eval --checkpoint "$CHECKPOINT" --data data/real-heldout --split test --json \
  --subset spacenet-buildings/all-heldout --subset neon-trees/all-heldout > "$OUT/real-heldout.json"
.venv/bin/python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
rows = {}
for name in ("benchmark", "heldout", "real-heldout"):
    rows.update(json.loads((out / f"{name}.json").read_text()))
(out / "all.json").write_text(json.dumps(rows, indent=2))
print("| subset | Pr@0.5 | Pr@0.7 | Pr@0.9 | oIoU | mIoU | n |\n|---|---:|---:|---:|---:|---:|---:|")
for key, m in rows.items():
    pct = lambda k: f"{100 * m[k]:.1f}"
    print(f"| {key.split(' / ')[-1]} | {pct('Pr@0.5')} | {pct('Pr@0.7')} | {pct('Pr@0.9')} | {pct('oIoU')} | {pct('mIoU')} | {m.get('n', '')} |")
PY
