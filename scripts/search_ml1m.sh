#!/usr/bin/env bash
# The "beyond SASRec" search on MovieLens-1M validation users (issue "beyond SASRec", item 3):
# every model of the final table gets the same budget, 16 random trials (the model's defaults
# first), its own search seed (independent draws), the same pruning rule (a median stopping
# rule, stricter than Vizier's: recbole_umi/experiments/pruning.py; after 3 validations, once 4
# unpruned trials have finished: python -m recbole_umi.tune
# --prune_after) and the same early stopping (5 validations without gain), over the spaces of
# tuning/ml-1m-search/*.hyper: learning rate, temperature, d (32/64/128), the tower's width, K
# and HN where they apply, T (10/20/50) for the order-aware models, and the objective (full
# softmax, or 5, 50 or 500 sampled negatives, uniform or by popularity with log-Q). RecBole's
# SASRec and SINE train with their own CE loss over every item. Fixed settings of every trial:
# tuning/ml-1m-search/search.yaml (batch 1024), then the model's own
# tuning/ml-1m-search/<model>.yaml where there is one; training seed 2020 (the search's; a
# table of the chosen settings uses other seeds).
#
#   bash scripts/search_ml1m.sh [DATA_PATH] [MODEL ...]   # DATA_PATH holds ml-1m/ (default ../shared/data)
#
# Two stages per model, one after the other in the same stream. The widening stage, once a
# model's 16 trials are done: scripts/search_edges.py finds where the best of them sits on the
# edge of its space (a choice of increasing numbers at its first or last value, a range within a
# tenth of an end) and writes the space widened one step past each edge (T stays within
# 10 to 50, for compute: its LIMITS) to
# results/search/ml-1m/<model>/widened.hyper; the search resumes in it to 20 trials. Every model
# gets these 4 trials, in its widened space or, with no edge, its own: the same budget for all.
#
# Code: run it from a checkout of one commit that stays put while the search spans sessions
# (results/search/ml-1m/README.md), so that work on main does not change a search's code
# midway. The first trials of YouTube DNN, ProfileDSSM and MIND ran earlier commits
# (README there), which differ from the pin in the search's own modules, the fused Adam and
# compile_step for RecBole's models (the same math to float tolerance); hence
# --allow_mixed_code, and each model's trials.md lists the versions its trials ran.
#
# Budget: about 90 hours of one stream, about 45 on two (results/search/ml-1m/README.md, "Time
# to come": the encoder models' trials at T = 50 take about 15 minutes an epoch and dominate;
# the T = 10 plan of 40 hours did not count them). It spans sessions: each
# finished trial is on disk at once (results/search/ml-1m/<model>/trials/), an interrupted
# search resumes where it stopped, and the cheap models come first. Two streams of one torch
# thread each; each stream takes the next model no other stream holds (a search's lock).
set -euo pipefail
data_path=$(realpath "${1:-../shared/data}")
shift || true
cd "$(dirname "$0")/.."
all_models=(YoutubeDNN ProfileDSSM MIND ComiRecDR UMI ComiRecSA SASRecMatching UMISA SASRec SINE)  # cheapest first
models=("$@")
if [[ ${#models[@]} -eq 0 ]]; then models=("${all_models[@]}"); fi
common=(--dataset=ml-1m "--data_path=$data_path" --algo=random --prune_after=3
        --prune_min_trials=4 --show_progress=False --state=WARNING --allow_mixed_code=True)

search() {
    for model in "${models[@]}"; do
        local seed=100 i  # the i-th of all_models has the search seed 100 + i: independent draws per model
        for i in "${!all_models[@]}"; do [[ ${all_models[i]} == "$model" ]] && seed=$((101 + i)); done
        if ((seed == 100)); then echo "$model is not one of the search's models: ${all_models[*]}" >&2; continue; fi
        local files=tuning/ml-1m-search/search.yaml
        if [[ -f tuning/ml-1m-search/$model.yaml ]]; then files+=",tuning/ml-1m-search/$model.yaml"; fi
        local out=results/search/ml-1m/$model
        local run=(python -m recbole_umi.tune "--model=$model" "--config_files=$files" "--out=$out"
                   "--search_seed=$seed" "${common[@]}")
        # a search another stream runs is refused at once (SearchBusyError): go on to the next.
        # Stage 1 is over once the space is widened (tune refuses to go back to the narrower one).
        if [[ ! -f $out/widened.hyper ]] &&
            ! "${run[@]}" "--params_file=tuning/ml-1m-search/$model.hyper" --max_evals=16; then
            echo "search of $model not finished here (busy in the other stream, or failed: see above)" >&2
            continue
        fi
        python scripts/search_edges.py "$out" --after=16 || continue  # writes $out/widened.hyper
        "${run[@]}" "--params_file=$out/widened.hyper" --max_evals=20 ||
            echo "widened search of $model not finished here (busy in the other stream, or failed: see above)" >&2
    done
}
stream_a() { search; }
stream_b() { sleep 30; search; }
source scripts/two_streams.sh
two_streams stream_a stream_b
