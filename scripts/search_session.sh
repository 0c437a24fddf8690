#!/usr/bin/env bash
# The ml-1m search (scripts/search_ml1m.sh) spans sessions: this starts it at a session's
# beginning and stops it before the session's end, so that nothing is lost between machines.
# Run it from main, with the plugin installed as .ci/run installs it.
#
#   bash scripts/search_session.sh start [WORKTREE]            # default: the pin's, ../wt-search15
#   bash scripts/search_session.sh stop [WAIT_S] [WORKTREE]    # then commit results/
#
# start: makes WORKTREE, the search's pinned checkout (results/search/ml-1m/README.md: the
# commit PIN below, its results/ a link to main's), if it is not there yet; copies main's
# scheduling scripts and widening rule (scripts/search_edges.py) into it; puts the unfinished
# runs' carried checkpoints back (scripts/carry_checkpoints.py restore) and starts the search
# on the models left, in the order of MODELS, in the background, in a process group of its own
# (its log: WORKTREE/search.log); when the search has ended (every model's trials done), the
# final table (scripts/final_table_ml1m.sh) in the same way, so a session once the searches
# are done starts and stops the table as it did the search. It refuses while anything trains
# on main's results from any checkout.
# stop (carry_checkpoints.py stop): finds every tune and compare run, search_ml1m.sh and
# final_table_ml1m.sh working on main's results, from whichever checkout; waits up to WAIT_S
# seconds (default 0) for the runs being trained to end their current epochs, so that the
# least training is lost; stops them all; and carries the unfinished runs' checkpoints into
# the carry/ folder of each search, of the final table and of any other --out it stopped,
# for the next machine: in the checkouts it stopped, and in WORKTREE (default the pin's)
# where it is there.
set -euo pipefail
# the search's commit (SEARCH_PIN: another, e.g. in a test): 201909f with the windows' popularity
# counts and the resume of a pruned trial fixed (results/search/ml-1m/README.md), from the
# worktree ../wt-search15 on
PIN=${SEARCH_PIN:-59dcf2e}
PIN_WORKTREE=../wt-search15  # the default WORKTREE: the pin's (a new pin, a new worktree)
MODELS=(ComiRecDR UMI UMISA SASRec SINE SASRecMatching ComiRecSA)  # the models left, longest first since 2026-12-05
usage="usage: bash scripts/search_session.sh start [WORKTREE] | stop [WAIT_S] [WORKTREE]"
action=${1:?$usage}
cd "$(dirname "$0")/.."
results=$(realpath results)

outs() {  # the tune and compare folders whose unfinished runs are carried
    local out
    for out in results/search/ml-1m/*/ results/ml-1m-final; do [[ -d $out ]] && echo "${out%/}"; done
    return 0
}

case $action in
start)
    worktree=$(realpath -m "${2:-$PIN_WORKTREE}")
    # installed? (found, not imported: importing them takes seconds)
    python -c "import importlib.util as u, sys; sys.exit(not all(map(u.find_spec, ('recbole', 'torch'))))" ||
        { echo "install the plugin first, as .ci/run does (torch, then pip install -e '.[test]')" >&2; exit 1; }
    busy=$(python scripts/carry_checkpoints.py runners "$results")
    if [[ -n $busy ]]; then
        echo "runs train on $results already (stop them first):" >&2
        echo "$busy" >&2
        exit 1
    fi
    if [[ ! -d $worktree ]]; then
        git worktree add --detach "$worktree" "$PIN"
        rm -rf "$worktree/results"
        ln -s "$results" "$worktree/results"
    fi
    [[ $(git -C "$worktree" rev-parse HEAD) == $(git rev-parse "$PIN^{commit}") ]] ||
        { echo "$worktree is not at the search's commit $PIN" >&2; exit 1; }
    [[ $(realpath "$worktree/results") == "$results" ]] ||
        { echo "$worktree/results is not $results: the trials would not be main's" >&2; exit 1; }
    # main's scheduling scripts and widening rule, at every start (a worktree made earlier too)
    cp scripts/{two_streams.sh,synth_profile_ablation.sh,final_table_ml1m.sh,search_edges.py} "$worktree/scripts/"
    cp tuning/synth/{noise_profile,one_noise_field}.yaml "$worktree/tuning/synth/"
    mapfile -t folders < <(outs)
    python scripts/carry_checkpoints.py restore "$worktree" "${folders[@]}" ||
        echo "some carried runs were not restored (above): they start again" >&2
    data=$(realpath ../shared/data)
    # the searches, then the final table (it starts only once every search has its trials: a
    # search stopped midway, by stop, ends the chain), in a process group of their own
    # (two_streams.sh ends its streams with kill 0: not the caller's group), every output to
    # the log: nothing holds the caller's terminal or pipe
    (cd "$worktree" && exec setsid nohup bash -c \
        'bash scripts/search_ml1m.sh "$@" && bash scripts/final_table_ml1m.sh "$1"' search "$data" "${MODELS[@]}") \
        >> "$worktree/search.log" 2>&1 < /dev/null &
    sleep 2
    [[ -n $(python scripts/carry_checkpoints.py runners "$results") ]] ||
        { echo "the search ended at once: see $worktree/search.log" >&2; tail -5 "$worktree/search.log" >&2; exit 1; }
    echo "the search runs in $worktree (its log: $worktree/search.log)"
    ;;
stop)
    since=$(date +%s)
    mapfile -t folders < <(outs)
    python scripts/carry_checkpoints.py stop "$results" "${folders[@]}" --seconds="${2:-0}" --since="$since" \
        --checkout="$(realpath -m "${3:-$PIN_WORKTREE}")"
    echo "stopped; now commit: git add results && git commit -m 'search: trials and carried checkpoints'"
    ;;
*)
    echo "$usage" >&2
    exit 2
    ;;
esac
