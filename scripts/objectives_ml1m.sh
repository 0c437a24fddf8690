#!/usr/bin/env bash
# Beyond the paper: the same models under other training objectives, each model at the
# settings its equal-budget search chose (scripts/tune_ml1m.sh), 3 seeds, batch 1024, T = 10:
#   paper   sampled softmax, 5 uniform negatives per positive (the paper's loss)
#   neg50   sampled softmax, 50 uniform negatives
#   neg500  sampled softmax, 500 uniform negatives
#   pop50   sampled softmax, 50 negatives drawn by popularity, log-Q corrected
#   full    full softmax over the catalogue
# for UMI, MIND+HN, ComiRec+HN, YouTube DNN and SASRec (as SASRecMatching: RecBole's SASRec
# encoder under the plugin's losses, with SASRec's tuned settings; under full softmax it is
# RecBole's SASRec under CE but for the padding item, so Table 2's SASRec runs stand in for
# it there and it does not train). One folder per objective,
# results/ml-1m-objectives/<objective>/ (runs/, objectives_<objective>.md: the paired tests of UMI); the
# paper's loss is Table 2's folder, results/ml-1m-tuned (the same settings: its runs are the
# paper-loss runs, and only models without runs there train). Then the objectives table,
# every model under every objective with the objective each model's validation chooses:
# results/ml-1m-objectives/objectives.md (scripts/objectives_table.py).
#
#   bash scripts/objectives_ml1m.sh [DATA_PATH] [OBJECTIVES] [MODELS]
#       defaults: ../shared/data, all five objectives, all five models
#       (e.g. `bash scripts/objectives_ml1m.sh ../shared/data full UMI,MIND+HN,YoutubeDNN,ComiRec+HN`)
#
# Seed by seed over all objectives, so a table cut short is complete for its first seeds.
# Two streams of one thread: SASRecMatching (the slowest, 40-100 min a run) in one, the other
# models in the other (without SASRecMatching, the models alternate). Interrupted? Run it
# again: finished runs are kept and skipped, and a run cut short continues from its last
# finished epoch. (Full softmax on one thread, measured 2026-11-29: UMI 40-50 min a run,
# ComiRec+HN about 60, MIND+HN about 35, YouTube DNN about 10.)
# --allow_search_seed=True: these seeds include 2020, the seed the searches trained with (best.yaml
# names it); the table knowingly includes it (docs/results.md). A new table uses other seeds.
set -euo pipefail
data_path=$(realpath "${1:-../shared/data}")
objectives=${2:-paper,neg50,neg500,pop50,full}
models=${3:-UMI,MIND+HN,ComiRec+HN,YoutubeDNN,SASRec}
seeds=(2020 2021 2022)
cd "$(dirname "$0")/.."
declare -A objective_args=(
    [paper]=""
    [neg50]="--n_negatives=50"
    [neg500]="--n_negatives=500"
    [pop50]="--n_negatives=50 --negative_sampler=popularity --logq_correction=True"
    [full]="--loss_type=full_softmax"
)
folder() { if [[ $1 == paper ]]; then echo results/ml-1m-tuned; else echo "results/ml-1m-objectives/$1"; fi; }
plan=results/ml-1m-objectives/plan.yaml
mkdir -p results/ml-1m-objectives
: > "$plan"
names=()
IFS=, read -ra chosen_models <<< "$models"
for model in "${chosen_models[@]}"; do
    best="results/tuning/ml-1m/$model/best.yaml"
    if [[ ! -f $best ]]; then echo "$model's search is not finished: run scripts/tune_ml1m.sh first" >&2; exit 1; fi
    name=$model files=$best
    if [[ $model == SASRec ]]; then
        name=SASRecMatching files="tuning/ml-1m/SASRec.yaml, $best"
        echo "SASRec: [$files]" >> "$plan"  # Table 2's SASRec, SASRecMatching's stand-in under full softmax
    fi
    names+=("$name")
    echo "$name: [$files]" >> "$plan"
done
IFS=, read -ra chosen <<< "$objectives"
source scripts/two_streams.sh  # two_streams, join
stream_a_models=() stream_b_models=()
for i in "${!names[@]}"; do
    if [[ " ${names[*]} " == *" SASRecMatching "* ]]; then
        if [[ ${names[$i]} == SASRecMatching ]]; then stream_a_models+=("${names[$i]}"); else stream_b_models+=("${names[$i]}"); fi
    elif (( i % 2 == 0 )); then stream_a_models+=("${names[$i]}"); else stream_b_models+=("${names[$i]}"); fi
done

compare_runs() {  # compare_runs OBJECTIVE MODELS SEEDS TABLE
    local objective=$1
    # shellcheck disable=SC2086  # the objective's arguments are words
    python -m recbole_umi.compare "--models=$2" --dataset=ml-1m "--data_path=$data_path" "--seeds=$3" \
        "--out=$(folder "$objective")" "--variant_files=$plan" --table="$4" \
        --train_batch_size=1024 --show_progress=False --state=WARNING --allow_search_seed=True ${objective_args[$objective]}
}
trained() {  # trained OBJECTIVE MODELS: the models that train under it. SASRecMatching under full
    # softmax is RecBole's SASRec under CE (tests/test_model_contracts.py): Table 2's SASRec runs stand in
    local objective=$1 model kept=()
    IFS=, read -ra given <<< "$2"
    for model in "${given[@]}"; do
        if [[ $objective == full && $model == SASRecMatching ]]; then continue; fi
        kept+=("$model")
    done
    join "${kept[@]}"
}
stand_in_runs() {  # stand_in_runs SEED: Table 2's SASRec run of the seed (RecBole's CE), if missing
    python -m recbole_umi.compare --models=SASRec --dataset=ml-1m "--data_path=$data_path" "--seeds=$1" \
        --out=results/ml-1m-tuned "--variant_files=$plan" --table=objectives_stand_in \
        --train_batch_size=1024 --show_progress=False --state=WARNING --allow_search_seed=True
    rm -f results/ml-1m-tuned/objectives_stand_in*
}
by_seed() {  # one stream's models, seed by seed over every objective
    local models=$1 table=$2 seed objective now
    [[ -n $models ]] || return 0
    for seed in "${seeds[@]}"; do
        for objective in "${chosen[@]}"; do
            now=$(trained "$objective" "$models")
            if [[ -n $now ]]; then compare_runs "$objective" "$now" "$seed" "$table"; fi
            if [[ $objective == full && ",$models," == *",SASRecMatching,"* ]]; then stand_in_runs "$seed"; fi
        done
    done
}
stream_a() { by_seed "$(join "${stream_a_models[@]}")" objectives_stream_a; }
stream_b() { by_seed "$(join "${stream_b_models[@]}")" objectives_stream_b; }
two_streams stream_a stream_b
pairs=() stand_in=()
for objective in "${chosen[@]}"; do
    now=$(trained "$objective" "$(join "${names[@]}")")
    mkdir -p "$(folder "$objective")/runs"
    if [[ -n $now ]]; then compare_runs "$objective" "$now" "$(join "${seeds[@]}")" "objectives_$objective"; fi
    rm -f "$(folder "$objective")"/objectives_stream_[ab]*.md "$(folder "$objective")"/objectives_stream_[ab]*.csv
    pairs+=("$objective=$(folder "$objective")")
    if [[ $objective == full && " ${names[*]} " == *" SASRecMatching "* ]]; then
        stand_in=(--stand_in=SASRecMatching@full=SASRec@results/ml-1m-tuned)
    fi
done
python scripts/objectives_table.py "${pairs[@]}" "--models=$(join "${names[@]}")" "--seeds=$(join "${seeds[@]}")" \
    "${stand_in[@]}" --out=results/ml-1m-objectives/objectives
