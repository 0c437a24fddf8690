#!/usr/bin/env bash
# The "beyond SASRec" final table on MovieLens-1M: every model of the search
# (scripts/search_ml1m.sh) at the settings its search chose on validation users
# (results/search/ml-1m/<model>/best.yaml, over the search's fixed settings), 5 training seeds
# that exclude the search's 2020, and the two-level test (test users and seeds) of UMISA, this
# project's user-aware multi-interest model, against each other model. Writes
# results/ml-1m-final/ (runs/, table.md, .csv, _tests.csv, plan.yaml, hr50.png: the figure;
# its README.md: what the table's text must say, written before it runs).
#
#   bash scripts/final_table_ml1m.sh [DATA_PATH] [TRIALS]   # DATA_PATH holds ml-1m/ (default ../shared/data)
#
# TRIALS (default 20: the 16 of the search and the 4 of its widening stage) is how many trials
# every model's search must have finished; the table refuses to start before. Interrupted? Run
# it again: finished runs are kept and skipped. The runs go seed by seed, each stream's cheap
# models first, so an interrupted table is complete for its first seeds (compare's
# `--table_only=True --seeds=2021,...` makes the table of those). A seed whose run fails does
# not stop the stream's later seeds; the table is written only once every run is on disk.
# Budget: a run costs about what its model's chosen trial did (each trial's wall_s, on one
# thread: 2 minutes for YouTube DNN and ProfileDSSM, 43-76 minutes for MIND, ComiRec-DR and
# UMI, 7.3 hours for SASRec's trial 10 and 6.6 for UMISA's trial 18, both at T = 50, 1.4 for
# UMISA's trial 5 at T = 20), so SASRec's and UMISA's five runs alone are 44-70 hours of one
# thread; the two streams are split by those hours. The searches of SINE, SASRecMatching and
# ComiRec-SA, still to run, add theirs. Its runs span sessions: run it from the search's pinned
# checkout (results/search/ml-1m/README.md), so that their code does not change midway.
#
#   MODELS="YoutubeDNN MIND" bash scripts/final_table_ml1m.sh [DATA_PATH] [TRIALS]
#
# runs only those models' runs, in one stream of one thread, as soon as their searches are
# finished: for the search's stream that has no model left to take while the other still runs
# its last search. No table: the command without MODELS makes it, and skips the runs on disk.
set -euo pipefail
data_path=$(realpath "${1:-../shared/data}")
trials=${2:-20}
cd "$(dirname "$0")/.."
models=(UMISA UMI MIND ComiRecDR ComiRecSA YoutubeDNN ProfileDSSM SASRecMatching SASRec SINE)  # UMISA first: compared
out=results/ml-1m-final
read -r -a only <<< "${MODELS:-}"
for model in "${only[@]}"; do
    [[ " ${models[*]} " == *" $model "* ]] || { echo "MODELS: $model is not one of the table's: ${models[*]}" >&2; exit 2; }
done
shopt -s nullglob
lines=()
for model in "${models[@]}"; do
    search=results/search/ml-1m/$model
    done_trials=("$search"/trials/*.json)
    # best.yaml chosen among all of them (a search stopped between its last trial and best.yaml: not yet)
    if [[ ${#done_trials[@]} -lt $trials ]] || ! head -n 1 "$search/best.yaml" 2>/dev/null | grep -q "^# Best of $trials "; then
        # with MODELS, the plan holds every finished search (the same plan whichever stream writes it)
        if ((${#only[@]})) && [[ " ${only[*]} " != *" $model "* ]]; then continue; fi
        echo "$model's search is not finished (${#done_trials[@]} of $trials trials): scripts/search_ml1m.sh first" >&2
        exit 1
    fi
    files=(tuning/ml-1m-search/search.yaml)
    if [[ -f tuning/ml-1m-search/$model.yaml ]]; then files+=("tuning/ml-1m-search/$model.yaml"); fi
    files+=("$search/best.yaml")
    lines+=("$model: [$(IFS=,; echo "${files[*]}")]")
done
mkdir -p "$out"
plan="$out/plan.yaml"
printf '%s\n' "${lines[@]}" > "$plan.$$" && mv "$plan.$$" "$plan"  # whole, for a compare reading it meanwhile
# --allow_mixed_code: the runs span sessions and machines, and a library release a new machine
# installs (numpy, faiss: unpinned) would otherwise stop the table midway; the code itself is
# the pinned checkout's, and the table lists every version its runs ran (as the search does)
common=(--dataset=ml-1m "--data_path=$data_path" "--out=$out" "--variant_files=$plan" --show_progress=False
        --state=WARNING --allow_mixed_code=True)
seeds=(2021 2022 2023 2024 2025)
source scripts/two_streams.sh  # two_streams, join, compare_seeds
if ((${#only[@]})); then
    OMP_NUM_THREADS=1 compare_seeds "$(join "${only[@]}")" "early_$$"
    rm -f "$out/early_$$.md" "$out/early_$$.csv" "$out/early_$$_tests.csv"
    exit 0
fi
# the streams split by the hours of each model's chosen trial, the longest first, each to the
# stream with fewer hours so far (fewer models on a tie), so that they end about together (a
# fixed split put SASRec and UMISA, the two longest, in one stream); each stream's models run
# cheapest first, so that its first seeds are complete early
chosen_wall_s() {  # the whole seconds its search's chosen trial trained (0 where unknown)
    local search=results/search/ml-1m/$1 trial wall
    trial=$(head -n 1 "$search/best.yaml" | sed -n 's/.*: trial \([0-9][0-9]*\),.*/\1/p')
    [[ -n $trial ]] || { echo 0; return; }
    wall=$(sed -n 's/.*"wall_s": \([0-9][0-9]*\).*/\1/p' "$search/trials/$(printf %03d "$((10#$trial))").json" 2>/dev/null || true)
    echo "${wall:-0}" | head -n 1
}
by_hours=()
for model in "${models[@]}"; do by_hours+=("$(chosen_wall_s "$model") $model"); done
mapfile -t by_hours < <(printf '%s\n' "${by_hours[@]}" | sort -s -k1,1nr)
stream_models=("" "") hours=(0 0) counts=(0 0)
for line in "${by_hours[@]}"; do
    read -r wall model <<< "$line"
    if ((hours[1] < hours[0] || (hours[1] == hours[0] && counts[1] < counts[0]))); then i=1; else i=0; fi
    stream_models[i]="$model ${stream_models[i]}"  # prepended: the cheapest first
    hours[i]=$((hours[i] + wall)) counts[i]=$((counts[i] + 1))
done
read -r -a models_a <<< "${stream_models[0]}"
read -r -a models_b <<< "${stream_models[1]}"
echo "streams by the chosen trials' hours: ${models_a[*]} ($((hours[0] / 3600)) h); ${models_b[*]} ($((hours[1] / 3600)) h)"
stream_a() { compare_seeds "$(join "${models_a[@]}")" stream_a; }
stream_b() { compare_seeds "$(join "${models_b[@]}")" stream_b; }
two_streams stream_a stream_b
# every run is on disk now: this only reads them and writes the table, UMISA first (and drops
# the tables of MODELS runs killed before they could remove their own)
write_table "$(join "${models[@]}")"
rm -f "$out"/early_*.md "$out"/early_*.csv
# and its figure: each model's HitRate@50 with its interval, each minus UMISA (look at it
# before committing it)
python scripts/results_figure.py "$out" "--models=$(join "${models[@]}")" "--seeds=$(join "${seeds[@]}")" \
    "--out=$out/hr50.png" --title="MovieLens-1M, the final table's seeds $(join "${seeds[@]}")"
