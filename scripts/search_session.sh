#!/usr/bin/env bash
# The ml-1m search (scripts/search_ml1m.sh) spans sessions: this starts it at a session's
# beginning and stops it before the session's end, so that nothing is lost between machines.
# Run it from main, with the plugin installed as .ci/run installs it.
#
#   bash scripts/search_session.sh start [WORKTREE]            # default ../wt-search
#   bash scripts/search_session.sh stop [WAIT_S] [WORKTREE]    # then commit results/
#
# start: makes WORKTREE, the search's pinned checkout (results/search/ml-1m/README.md: the
# commit PIN below, its results/ a link to main's, main's scheduling scripts copied in), if it
# is not there yet; puts the unfinished runs' carried checkpoints back
# (scripts/carry_checkpoints.py restore) and starts the search on the models left, in the
# order of MODELS, in the background, in a process group of its own (its log:
# WORKTREE/search.log). It refuses while anything trains on main's results from any checkout.
# stop: finds what trains on main's results (the search, the final table, their tune and
# compare runs; in whichever checkout), waits up to WAIT_S seconds (default 0) for each
# unfinished run to end its current epoch, so that the least training is lost, stops them
# and carries the unfinished runs' checkpoints (carry_checkpoints.py save) into the carry/
# folder of each search and of the final table, for the next machine: those of the
# checkouts it stopped, and of WORKTREE (default ../wt-search) where it is there.
set -euo pipefail
PIN=${SEARCH_PIN:-d69fedc}  # the search's commit (SEARCH_PIN: another, e.g. in a test)
MODELS=(ComiRecDR UMI UMISA SASRec SINE SASRecMatching ComiRecSA)  # the models left, longest first since 2026-12-05
usage="usage: bash scripts/search_session.sh start [WORKTREE] | stop [WAIT_S] [WORKTREE]"
action=${1:?$usage}
cd "$(dirname "$0")/.."
main=$PWD
results=$(realpath results)

trainers() {  # "PID CHECKOUT" of each process training on main's results: a runner working in a checkout whose results are main's
    local pid cwd
    for pid in $(pgrep -f "search_ml1m.sh|final_table_ml1m.sh|recbole_umi.tune|recbole_umi.compare" || true); do
        cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null) || continue
        [[ -e $cwd/results && $(realpath "$cwd/results" 2>/dev/null) == "$results" ]] && echo "$pid $cwd"
    done
    return 0
}
outs() {  # the tune and compare folders whose unfinished runs are carried
    local out
    for out in results/search/ml-1m/*/ results/ml-1m-final; do [[ -d $out ]] && echo "${out%/}"; done
    return 0
}

case $action in
start)
    worktree=$(realpath -m "${2:-../wt-search}")
    if [[ -n $(trainers) ]]; then
        echo "runs train on $results already, in: $(trainers | cut -d' ' -f2 | sort -u | tr '\n' ' ')(stop them first)" >&2
        exit 1
    fi
    if [[ ! -d $worktree ]]; then
        git worktree add --detach "$worktree" "$PIN"
        rm -rf "$worktree/results"
        ln -s "$results" "$worktree/results"
        cp scripts/{two_streams.sh,synth_profile_ablation.sh,final_table_ml1m.sh} "$worktree/scripts/"
        cp tuning/synth/{noise_profile,one_noise_field}.yaml "$worktree/tuning/synth/"
    fi
    [[ $(git -C "$worktree" rev-parse HEAD) == $(git rev-parse "$PIN^{commit}") ]] ||
        { echo "$worktree is not at the search's commit $PIN" >&2; exit 1; }
    mapfile -t folders < <(outs)
    python scripts/carry_checkpoints.py restore "$worktree" "${folders[@]}"
    data=$(realpath ../shared/data)
    # a process group of its own (two_streams.sh ends its streams with kill 0: not the caller's
    # group), every output to its log: nothing holds the caller's terminal or pipe
    (cd "$worktree" && exec setsid nohup bash scripts/search_ml1m.sh "$data" "${MODELS[@]}") \
        > "$worktree/search.log" 2>&1 < /dev/null &
    echo "the search runs in $worktree (its log: $worktree/search.log)"
    ;;
stop)
    wait_s=${2:-0}
    since=$(date +%s)
    mapfile -t folders < <(outs)
    worktree=$(realpath -m "${3:-../wt-search}")
    mapfile -t checkouts < <({ trainers | cut -d' ' -f2; [[ -d $worktree ]] && echo "$worktree"; } | sort -u)
    for checkout in "${checkouts[@]}"; do
        python scripts/carry_checkpoints.py wait "$checkout" "${folders[@]}" --seconds="$wait_s" --since="$since"
    done
    for signal in TERM KILL; do  # KILL for what TERM has not ended in 30 s
        pids=$(trainers | cut -d' ' -f1)
        [[ -z $pids ]] && break
        kill -s "$signal" $pids 2>/dev/null || true
        for _ in $(seq 30); do [[ -n $(trainers) ]] && sleep 1; done
    done
    for checkout in "${checkouts[@]}"; do
        python scripts/carry_checkpoints.py save "$checkout" "${folders[@]}"
    done
    echo "stopped; now commit: git add results && git commit -m 'search: trials and carried checkpoints'"
    ;;
*)
    echo "$usage" >&2
    exit 2
    ;;
esac
