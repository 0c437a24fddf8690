#!/usr/bin/env bash
# The paper's training samples (train_sampling: one_per_user, one random target per training
# user drawn afresh each epoch) against every position of every user (Table 2's runs, in
# results/ml-1m-tuned/): UMI, MIND+HN, ComiRec+HN and YouTube DNN at their tuned settings,
# 3 seeds, batch 1024. An epoch is then 4,832 samples instead of 798,996, so the runs get
# the same order of training: up to 3,000 epochs, validated every 50 (241,600 samples, a
# third of an all-positions epoch), stopping after 5 validations without gain.
# Writes results/ml-1m-one-per-user/ (runs/, table.md with the paired tests of UMI).
#
#   bash scripts/sampling_ml1m.sh [DATA_PATH]     # DATA_PATH holds ml-1m/ (default ../shared/data)
#
# Interrupted? Run it again: finished runs are kept and skipped.
# --allow_search_seed=True: these seeds include 2020, the seed the searches trained with (best.yaml
# names it); the table knowingly includes it (docs/results.md). A new table uses other seeds.
set -euo pipefail
data_path=$(realpath "${1:-../shared/data}")
cd "$(dirname "$0")/.."
out=results/ml-1m-one-per-user
mkdir -p "$out"
plan="$out/plan.yaml"
: > "$plan"
models=(UMI MIND+HN ComiRec+HN YoutubeDNN)
for model in "${models[@]}"; do
    best=results/tuning/ml-1m/$model/best.yaml
    if [[ ! -f $best ]]; then echo "$model's search is not finished: run scripts/tune_ml1m.sh first" >&2; exit 1; fi
    echo "$model: [$best]" >> "$plan"
done
common=(--dataset=ml-1m "--data_path=$data_path" --seeds=2020,2021,2022 "--out=$out" "--variant_files=$plan"
        --train_batch_size=1024 --train_sampling=one_per_user --epochs=3000 --eval_step=50 --stopping_step=5
        --show_progress=False --state=WARNING --allow_search_seed=True)
source scripts/two_streams.sh  # two_streams, join
stream_a() { python -m recbole_umi.compare "--models=$(join UMI YoutubeDNN)" "${common[@]}" --table=stream_a; }
stream_b() { python -m recbole_umi.compare "--models=$(join MIND+HN ComiRec+HN)" "${common[@]}" --table=stream_b; }
two_streams stream_a stream_b
python -m recbole_umi.compare "--models=$(join "${models[@]}")" "${common[@]}" --table=table
rm -f "$out"/stream_[ab].md "$out"/stream_[ab].csv "$out"/stream_[ab]_tests.csv
