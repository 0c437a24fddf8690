#!/usr/bin/env bash
# Do causal encoders trained in one pass keep the rows' accuracy? (docs/benchmarks.md,
# "Causal encoders in one pass"): SASRecMatching and UMISA at SASRec's chosen encoder settings
# (as results/ml-1m-umisa, their row runs), seeds 2021-2023, trained with windows:
#   results/ml-1m-windows-seeds    windows that do not overlap (window_stride = T = 10), batch
#                                  102 windows (about 1,020 targets a batch);
#   results/ml-1m-windows-stride5  overlapping windows, a row every 5 targets (each target sees
#                                  at least 6 items before it), batch 204 (about 1,020 targets).
# Then the two-level tests of each against the rows (results/claims/pairs.md). Two streams of
# one torch thread each; 4-10 minutes a run.
#
#   bash scripts/windows_ml1m.sh [DATA_PATH] [STRIDE ...]   # DATA_PATH holds ml-1m/ (default ../shared/data)
#
# Interrupted? Run it again: finished runs are kept and skipped, a run cut short continues.
set -euo pipefail
data_path=$(realpath "${1:-../shared/data}")
shift || true
strides=("$@")
if [[ ${#strides[@]} -eq 0 ]]; then strides=(10 5); fi
cd "$(dirname "$0")/.."
run() {  # run STRIDE MODELS TABLE
    local out=results/ml-1m-windows-stride$1 batch=$((1024 / $1))
    [[ $1 == 10 ]] && out=results/ml-1m-windows-seeds
    mkdir -p "$out"
    cp results/ml-1m-umisa/plan.yaml "$out/plan.yaml"
    local stride=(--window_stride="$1")
    [[ $1 == 10 ]] && stride=()  # the default, T
    python -m recbole_umi.compare "--models=$2" --dataset=ml-1m "--data_path=$data_path" --seeds=2021,2022,2023 \
        "--variant_files=$out/plan.yaml" "--out=$out" --train_sampling=windows "--train_batch_size=$batch" \
        "${stride[@]}" --show_progress=False --state=WARNING --also_exclude_history=True \
        "--eval_history_curve=[1,2,3,5,10]" "--table=$3"
}
stream_a() { for s in "${strides[@]}"; do run "$s" SASRecMatching,UMISA stream_a; done; }
stream_b() { sleep 5; for s in "${strides[@]}"; do run "$s" UMISA,SASRecMatching stream_b; done; }
source scripts/two_streams.sh
two_streams stream_a stream_b
for s in "${strides[@]}"; do
    out=results/ml-1m-windows-stride$s
    [[ $s == 10 ]] && out=results/ml-1m-windows-seeds
    rm -f "$out"/stream_[ab].md "$out"/stream_[ab].csv "$out"/stream_[ab]_tests.csv
    python -m recbole_umi.compare --models=SASRecMatching,UMISA --dataset=ml-1m "--data_path=$data_path" \
        --seeds=2021,2022,2023 "--variant_files=$out/plan.yaml" "--out=$out" --train_sampling=windows \
        "--train_batch_size=$((1024 / s))" $([[ $s == 10 ]] || echo "--window_stride=$s") --show_progress=False \
        --state=WARNING --also_exclude_history=True "--eval_history_curve=[1,2,3,5,10]" --table=table
done
python scripts/claims_tests.py
