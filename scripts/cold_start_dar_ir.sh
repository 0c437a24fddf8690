#!/usr/bin/env bash
# Do DAR and IR pay off where the profile is all there is? (docs/analysis.md, "Cold start")
# UMI, UMI w/o DAR and UMI w/o IR trained with history_dropout 0.5 (the training that made UMI
# beat the popularity floor at k = 0), at UMI's chosen settings, seeds 2021-2023, one code
# version for all nine runs (results/ml-1m-coldstart-dropout50 holds runs of older code), then
# their curve: UMI tested against each ablation at k = 0, 1, 2, 3, 5, 10. Two streams of one
# torch thread each; about 45 minutes on 2 cores.
#
#   bash scripts/cold_start_dar_ir.sh [DATA_PATH]     # DATA_PATH holds ml-1m/ (default ../shared/data)
#
# Interrupted? Run it again: finished runs are kept and skipped, a run cut short continues.
set -euo pipefail
data_path=$(realpath "${1:-../shared/data}")
cd "$(dirname "$0")/.."
out=results/ml-1m-coldstart-dar-ir
mkdir -p "$out"
plan="$out/plan.yaml"
cat > "$plan" <<'PLAN'
UMI: [results/tuning/ml-1m/UMI/best.yaml]
UMI-DAR: [results/tuning/ml-1m/UMI/best.yaml]
UMI-IR: [results/tuning/ml-1m/UMI/best.yaml]
PLAN
common=(--dataset=ml-1m "--data_path=$data_path" --seeds=2021,2022,2023 "--variant_files=$plan"
        --train_batch_size=1024 --show_progress=False --state=WARNING --history_dropout=0.5
        "--eval_history_curve=[0,1,2,3,5,10]")
# compare's lock per run lets the two streams share the nine runs
stream() { python -m recbole_umi.compare --models=UMI,UMI-DAR,UMI-IR "--out=$out" "${common[@]}" --table="$1"; }
stream_a() { stream stream_a; }
stream_b() { sleep 5; stream stream_b; }
source scripts/two_streams.sh
two_streams stream_a stream_b
python scripts/cold_start_curve.py "$out" --models=UMI,UMI-DAR,UMI-IR --seeds=2021,2022,2023 \
    --metrics=recall@50,recall@10,recall@300 --title="UMI and its ablations, trained with history dropout 0.5" \
    --out="$out/curve"
