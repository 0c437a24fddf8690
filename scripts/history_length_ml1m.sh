#!/usr/bin/env bash
# History length T as a knob of the objectives table: UMI (which reads no order), YouTube DNN
# (the mean of the history: no order either, and quick) and SASRecMatching (RecBole's SASRec
# encoder, which reads order) at their tuned settings, T = 10 / 20 / 50,
# 3 seeds, batch 1024, trained with 50 uniform negatives (neg50: the objective UMI's validation
# chooses, within 0.8 points of the full softmax for every model at a third of its time;
# docs/results-notebook.md). T = 10 is the objectives table's neg50 folder (the same settings: its runs
# count, and only missing ones train); T = 20 and 50 go to results/ml-1m-history/T<T>/. Then the
# table, results/ml-1m-history/history.md: each model under each T, the T its validation chooses,
# and each T against T = 10 with the paired tests (scripts/objectives_table.py --against=T10).
#
#   bash scripts/history_length_ml1m.sh [DATA_PATH]     # DATA_PATH holds ml-1m/ (default ../shared/data)
#
# Seed by seed, so a table cut short is complete for its first seeds. Interrupted? Run it again:
# finished runs are kept and skipped, and a run cut short continues from its last finished epoch.
# --allow_search_seed=True: these seeds include 2020, the seed the searches trained with (best.yaml
# names it); the table knowingly includes it (docs/results.md). A new table uses other seeds.
set -euo pipefail
data_path=$(realpath "${1:-../shared/data}")
seeds=(2020 2021 2022)
cd "$(dirname "$0")/.."
plan=results/ml-1m-objectives/plan.yaml  # each model's tuned settings, as in the objectives table
for tuned in UMI YoutubeDNN SASRec; do
    if [[ ! -f results/tuning/ml-1m/$tuned/best.yaml ]]; then
        echo "$tuned's search is not finished: run scripts/tune_ml1m.sh first" >&2; exit 1
    fi
done
folder() { if [[ $1 == 10 ]]; then echo results/ml-1m-objectives/neg50; else echo "results/ml-1m-history/T$1"; fi; }
runs() {  # runs MODEL T SEEDS TABLE
    local length=()  # T = 10 is the dataset config's: the neg50 runs were made without the setting
    if [[ $2 != 10 ]]; then length=("--MAX_ITEM_LIST_LENGTH=$2"); fi
    python -m recbole_umi.compare "--models=$1" --dataset=ml-1m "--data_path=$data_path" "--seeds=$3" \
        "--out=$(folder "$2")" "--variant_files=$plan" --table="$4" --n_negatives=50 "${length[@]}" \
        --train_batch_size=1024 --show_progress=False --state=WARNING --allow_search_seed=True
}
by_seed() {  # by_seed MODELS TABLE: every T of a seed before the next seed
    local seed length
    for seed in "${seeds[@]}"; do
        for length in 10 20 50; do runs "$1" "$length" "$seed" "$2"; done
    done
}
stream_a() { by_seed UMI,YoutubeDNN history_stream_a; }
stream_b() { by_seed SASRecMatching history_stream_b; }
source scripts/two_streams.sh
two_streams stream_a stream_b
for length in 10 20 50; do rm -f "$(folder "$length")"/history_*.md "$(folder "$length")"/history_*.csv; done
mkdir -p results/ml-1m-history
python scripts/objectives_table.py T10="$(folder 10)" T20="$(folder 20)" T50="$(folder 50)" \
    --models=UMI,YoutubeDNN,SASRecMatching "--seeds=$(join "${seeds[@]}")" --against=T10 --out=results/ml-1m-history/history
