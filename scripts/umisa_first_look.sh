#!/usr/bin/env bash
# A first look at UMISA on ml-1m (docs/results.md, "UMISA: a first look"): UMISA and
# SASRecMatching at the encoder settings the equal-budget search chose for SASRec
# (results/tuning/ml-1m/SASRec/best.yaml: learning rate, dropout, inner size; d = 32), every
# other setting at its default (UMISA: K = 3, profile-steered queries, the recent interest,
# IR, HN; both: 5 uniform negatives, temperature 1), seeds 2021-2023 (SEEDS=2021,2022 for
# two; the search trained with 2020), with the two-level test of UMISA against SASRecMatching. Not a search: UMISA's own
# settings are untuned. Every run also gives the cold-start curve (k = 1, 2, 3, 5, 10; SASRec's
# encoder refuses k = 0) and the seen-items-left-out figures. Two streams of one torch thread
# each; 13-28 minutes a run, about 80 minutes for the six on 2 cores.
#
#   bash scripts/umisa_first_look.sh [DATA_PATH]     # DATA_PATH holds ml-1m/ (default ../shared/data)
#
# Interrupted? Run it again: finished runs are kept and skipped, a run cut short continues.
set -euo pipefail
data_path=$(realpath "${1:-../shared/data}")
cd "$(dirname "$0")/.."
out=results/ml-1m-umisa
seeds=${SEEDS:-2021,2022,2023}
mkdir -p "$out"
plan="$out/plan.yaml"
cat > "$plan" <<'PLAN'
UMISA: [tuning/ml-1m/SASRec.yaml, results/tuning/ml-1m/SASRec/best.yaml]
SASRecMatching: [tuning/ml-1m/SASRec.yaml, results/tuning/ml-1m/SASRec/best.yaml]
PLAN
compare() {
    python -m recbole_umi.compare --models=UMISA,SASRecMatching --dataset=ml-1m "--data_path=$data_path" \
        "--seeds=$seeds" "--variant_files=$plan" --out="$out" --train_batch_size=1024 --show_progress=False \
        --state=WARNING --also_exclude_history=True "--eval_history_curve=[1,2,3,5,10]" "$@"
}
stream_a() { compare --table=stream_a; }
stream_b() { sleep 5; compare --table=stream_b; }
source scripts/two_streams.sh
two_streams stream_a stream_b
compare --table=table
python scripts/cold_start_curve.py "$out" --models=UMISA,SASRecMatching "--seeds=$seeds" \
    --metrics=recall@50,recall@10,recall@300 --out="$out/curve"
python scripts/seen_items_table.py "$out" --models=UMISA,SASRecMatching "--seeds=$seeds" --out="$out/seen_items"
