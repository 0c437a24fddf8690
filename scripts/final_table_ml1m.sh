#!/usr/bin/env bash
# The "beyond SASRec" final table on MovieLens-1M: every model of the search
# (scripts/search_ml1m.sh) at the settings its search chose on validation users
# (results/search/ml-1m/<model>/best.yaml, over the search's fixed settings), 5 training seeds
# that exclude the search's 2020, and the two-level test (test users and seeds) of UMISA, this
# project's user-aware multi-interest model, against each other model. Writes
# results/ml-1m-final/ (runs/, table.md, .csv, _tests.csv, plan.yaml, hr50.png: the figure).
#
#   bash scripts/final_table_ml1m.sh [DATA_PATH] [TRIALS]   # DATA_PATH holds ml-1m/ (default ../shared/data)
#
# TRIALS (default 20: the 16 of the search and the 4 of its widening stage) is how many trials
# every model's search must have finished; the table refuses to start before. Interrupted? Run
# it again: finished runs are kept and skipped. The runs go seed by seed, the cheap models
# first, so an interrupted table is complete for its first seeds (`--seeds=2021,...` on the
# last command makes the table of those). Budget: about 10 minutes a run for the six cheap
# models; for the four with a transformer encoder it depends on the T their searches chose:
# 30-90 minutes at T = 10, up to about 5 hours at T = 50 (about 15 minutes an epoch on one
# thread: results/search/ml-1m/README.md), 50 runs: 20-60 hours of one thread. Its runs span
# sessions: run it from the search's pinned checkout (the same README), so that their code
# does not change midway.
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
# about the same hours a stream: each has two encoder models
stream_a() { compare_seeds "$(join YoutubeDNN MIND ComiRecSA UMISA SASRec)" stream_a; }
stream_b() { compare_seeds "$(join ProfileDSSM ComiRecDR UMI SASRecMatching SINE)" stream_b; }
two_streams stream_a stream_b
# every run is on disk now: this only reads them and writes the table, UMISA first (and drops
# the tables of MODELS runs killed before they could remove their own)
write_table "$(join "${models[@]}")"
rm -f "$out"/early_*.md "$out"/early_*.csv
# and its figure: each model's HitRate@50 with its interval, each minus UMISA (look at it
# before committing it)
python scripts/results_figure.py "$out" "--models=$(join "${models[@]}")" "--seeds=$(join "${seeds[@]}")" \
    "--out=$out/hr50.png" --title="MovieLens-1M, the final table's seeds $(join "${seeds[@]}")"
