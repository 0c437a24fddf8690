#!/usr/bin/env bash
# Beyond the paper: the same models under other training objectives, each model at the
# settings its equal-budget search chose (scripts/tune_ml1m.sh), 3 seeds, batch 1024, T = 10:
#   paper   sampled softmax, 5 uniform negatives per positive (the paper's loss)
#   neg50   sampled softmax, 50 uniform negatives
#   neg500  sampled softmax, 500 uniform negatives
#   pop50   sampled softmax, 50 negatives drawn by popularity, log-Q corrected
#   full    full softmax over the catalogue
# for UMI, MIND+HN, ComiRec+HN, YouTube DNN and SASRec (as SASRecMatching: RecBole's SASRec
# encoder under the plugin's losses, with SASRec's tuned settings). One folder per objective,
# results/ml-1m-objectives/<objective>/ (runs/, table.md with the paired tests of UMI).
#
#   bash scripts/objectives_ml1m.sh [DATA_PATH] [OBJECTIVES] [MODELS]
#       defaults: ../shared/data, all five objectives, all five models
#       (e.g. `bash scripts/objectives_ml1m.sh ../shared/data full UMI,MIND+HN,YoutubeDNN,ComiRec+HN`)
#
# Each objective's runs go seed by seed, so a table cut short is complete for its first
# seeds. Interrupted? Run it again: finished runs are kept and skipped, and a run cut short
# continues from its last finished epoch. (Full softmax on one thread: UMI about 80 min a
# run, measured 2026-11-29.)
set -euo pipefail
data_path=$(realpath "${1:-../shared/data}")
objectives=${2:-paper,neg50,neg500,pop50,full}
models=${3:-UMI,MIND+HN,ComiRec+HN,YoutubeDNN,SASRec}
cd "$(dirname "$0")/.."
declare -A objective_args=(
    [paper]=""
    [neg50]="--n_negatives=50"
    [neg500]="--n_negatives=500"
    [pop50]="--n_negatives=50 --negative_sampler=popularity --logq_correction=True"
    [full]="--loss_type=full_softmax"
)
plan=results/ml-1m-objectives/plan.yaml
mkdir -p results/ml-1m-objectives
: > "$plan"
names=()
IFS=, read -ra chosen_models <<< "$models"
for model in "${chosen_models[@]}"; do
    best="results/tuning/ml-1m/$model/best.yaml"
    if [[ ! -f $best ]]; then echo "$model's search is not finished: run scripts/tune_ml1m.sh first" >&2; exit 1; fi
    name=$model files=$best
    if [[ $model == SASRec ]]; then name=SASRecMatching files="tuning/ml-1m/SASRec.yaml, $best"; fi
    names+=("$name")
    echo "$name: [$files]" >> "$plan"
done
model_list=$(IFS=,; echo "${names[*]}")

run_objective() {
    local objective=$1 seeds
    for seeds in 2020 2021 2022 2020,2021,2022; do  # seed by seed, then the table of all three
        # shellcheck disable=SC2086  # the objective's arguments are words
        python -m recbole_umi.compare "--models=$model_list" \
            --dataset=ml-1m "--data_path=$data_path" "--seeds=$seeds" \
            "--out=results/ml-1m-objectives/$objective" "--variant_files=$plan" \
            --train_batch_size=1024 --show_progress=False --state=WARNING ${objective_args[$objective]}
    done
}
IFS=, read -ra chosen <<< "$objectives"
half=$(( (${#chosen[@]} + 1) / 2 ))
stream_a() { for objective in "${chosen[@]:0:$half}"; do run_objective "$objective"; done; }
stream_b() { for objective in "${chosen[@]:$half}"; do run_objective "$objective"; done; }
source scripts/two_streams.sh
two_streams stream_a stream_b
