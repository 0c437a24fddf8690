#!/usr/bin/env bash
# History length T as a knob of the objectives table: UMI (which reads no order) and
# SASRecMatching (RecBole's SASRec encoder, which does) under full softmax, at their tuned
# settings, T = 10 / 20 / 50, 3 seeds, batch 1024 (python -m recbole_umi.sweep; validation
# columns in sweep.csv to choose T by). Writes results/ml-1m-history/<model>/.
#
#   bash scripts/history_length_ml1m.sh [DATA_PATH]     # DATA_PATH holds ml-1m/ (default ../shared/data)
#
# Interrupted? Run it again: finished runs are kept and skipped.
set -euo pipefail
data_path=$(realpath "${1:-../shared/data}")
cd "$(dirname "$0")/.."
sweep() {
    local model=$1 tuned=$2
    local best=results/tuning/ml-1m/$tuned/best.yaml
    if [[ ! -f $best ]]; then echo "$tuned's search is not finished: run scripts/tune_ml1m.sh first" >&2; return 1; fi
    python -m recbole_umi.sweep "--model=$model" --setting=MAX_ITEM_LIST_LENGTH --values=10,20,50 \
        --dataset=ml-1m "--data_path=$data_path" --seeds=2020,2021,2022 "--out=results/ml-1m-history/$model" \
        "--config_files=$best" --loss_type=full_softmax --train_batch_size=1024 --show_progress=False --state=WARNING
}
stream_a() { sweep UMI UMI; }
stream_b() { sweep SASRecMatching SASRec; }
source scripts/two_streams.sh
two_streams stream_a stream_b
