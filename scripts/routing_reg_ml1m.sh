#!/usr/bin/env bash
# Routing regularisation against routing collapse (docs/design.md), measured on validation:
# UMI, MIND+HN and ComiRec+HN (ComiRec-DR) at their tuned settings (results/tuning/ml-1m/*/best.yaml), batch 1024,
# routing_regularization 0 / 0.1 / 1, 3 seeds each (python -m recbole_umi.sweep). Each
# folder's sweep.csv has the validation metrics (choose lambda by these), the test metrics
# and the interest cosine. Writes results/ml-1m-routing/<model>/.
#
#   bash scripts/routing_reg_ml1m.sh [DATA_PATH]     # DATA_PATH holds ml-1m/ (default ../shared/data)
#
# Interrupted? Run it again: finished runs are kept and skipped.
# --allow_search_seed=True: these seeds include 2020, the seed the searches trained with (best.yaml
# names it); the table knowingly includes it (docs/results.md). A new table uses other seeds.
set -euo pipefail
data_path=$(realpath "${1:-../shared/data}")
cd "$(dirname "$0")/.."
sweep() {
    local model=$1
    local best=results/tuning/ml-1m/$model/best.yaml
    if [[ ! -f $best ]]; then echo "$model's search is not finished: run scripts/tune_ml1m.sh first" >&2; return 1; fi
    python -m recbole_umi.sweep "--model=$model" --setting=routing_regularization --values=0,0.1,1 \
        --dataset=ml-1m "--data_path=$data_path" --seeds=2020,2021,2022 "--out=results/ml-1m-routing/$model" \
        "--config_files=$best" --train_batch_size=1024 --show_progress=False --state=WARNING --allow_search_seed=True
}
stream_a() { sweep UMI && sweep ComiRec+HN; }
stream_b() { sweep MIND+HN; }
source scripts/two_streams.sh
two_streams stream_a stream_b
