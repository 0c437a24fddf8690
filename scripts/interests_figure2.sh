#!/usr/bin/env bash
# The paper's Figure 2: UMI on MovieLens-1M with K = 2..7 interests, at the other settings its
# equal-budget search chose (results/tuning/ml-1m/UMI/best.yaml; K itself overridden), batch
# 1024, 3 seeds (python -m recbole_umi.sweep). Writes results/ml-1m-interests/ (one folder
# of runs per K, sweep.csv, sweep.png). Test metrics: sensitivity, not a choice of K.
#
#   bash scripts/interests_figure2.sh [DATA_PATH]     # DATA_PATH holds ml-1m/ (default ../shared/data)
#
# Interrupted? Run it again: finished runs are kept and skipped.
# --allow_search_seed=True: these seeds include 2020, the seed the searches trained with (best.yaml
# names it); the table knowingly includes it (docs/results.md). A new table uses other seeds.
set -euo pipefail
data_path=$(realpath "${1:-../shared/data}")
cd "$(dirname "$0")/.."
best=results/tuning/ml-1m/UMI/best.yaml
if [[ ! -f $best ]]; then echo "UMI's search is not finished: run scripts/tune_ml1m.sh first" >&2; exit 1; fi
OMP_NUM_THREADS=2 python -m recbole_umi.sweep --model=UMI --setting=n_interests --values=2,3,4,5,6,7 \
    --dataset=ml-1m "--data_path=$data_path" --seeds=2020,2021,2022 --out=results/ml-1m-interests \
    "--config_files=$best" --train_batch_size=1024 --show_progress=False --state=WARNING --allow_search_seed=True
