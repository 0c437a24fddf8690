#!/usr/bin/env bash
# The ml-1m search (scripts/search_ml1m.sh) spans sessions: this starts it at a session's
# beginning and stops it before the session's end, so that nothing is lost between machines.
# Run it from main, with the plugin installed as .ci/run installs it.
#
#   bash scripts/search_session.sh start [WORKTREE]            # default ../wt-search
#   bash scripts/search_session.sh stop [WORKTREE] [WAIT_S]    # then commit results/search
#
# start: makes WORKTREE, the search's pinned checkout (results/search/ml-1m/README.md: the
# commit PIN below, its results/ a link to main's, main's scheduling scripts copied in), if it
# is not there yet; puts the unfinished trials' carried checkpoints back (search_carry.sh
# restore) and starts the search on the models left, in the order of MODELS, in the
# background (its log: WORKTREE/search.log).
# stop: waits up to WAIT_S seconds (default 0) for each running trial to end its current
# epoch (a -last checkpoint newer than the call), so that the least training is lost, then
# stops the search and carries its unfinished trials (search_carry.sh save) into
# results/search/ml-1m-carry/ for the next machine.
set -euo pipefail
PIN=${SEARCH_PIN:-d69fedc}  # the search's commit (SEARCH_PIN: another, e.g. in a test)
MODELS=(ComiRecDR UMI UMISA SASRec SINE SASRecMatching ComiRecSA)  # the models left, longest first since 2026-12-05
usage="usage: bash scripts/search_session.sh start|stop [WORKTREE] [WAIT_S]"
action=${1:?$usage}
cd "$(dirname "$0")/.."
main=$PWD
worktree=$(realpath -m "${2:-../wt-search}")

search_pids() {  # the search's processes: its streams and their tune runs, working in the worktree
    local pid
    for pid in $(pgrep -f "search_ml1m.sh|recbole_umi.tune" || true); do
        [[ $(readlink "/proc/$pid/cwd" || true) == "$worktree" ]] && echo "$pid"
    done
    return 0
}
running() { [[ -n $(search_pids) ]]; }

case $action in
start)
    if running; then echo "the search is running already in $worktree" >&2; exit 1; fi
    if [[ ! -d $worktree ]]; then
        git worktree add --detach "$worktree" "$PIN"
        rm -rf "$worktree/results"
        ln -s "$main/results" "$worktree/results"
        cp scripts/{two_streams.sh,synth_profile_ablation.sh,final_table_ml1m.sh} "$worktree/scripts/"
        cp tuning/synth/{noise_profile,one_noise_field}.yaml "$worktree/tuning/synth/"
    fi
    [[ $(git -C "$worktree" rev-parse HEAD) == $(git rev-parse "$PIN^{commit}") ]] ||
        { echo "$worktree is not at the search's commit $PIN" >&2; exit 1; }
    bash scripts/search_carry.sh restore "$worktree"
    data=$(realpath ../shared/data)
    # in the background, every output to the log: nothing holds the caller's terminal or pipe
    (cd "$worktree" && exec nohup bash scripts/search_ml1m.sh "$data" "${MODELS[@]}") \
        > "$worktree/search.log" 2>&1 < /dev/null &
    echo "the search runs in $worktree (its log: $worktree/search.log)"
    ;;
stop)
    wait_s=${3:-0}
    since=$(date +%s)
    shopt -s nullglob
    while ((wait_s > 0 && $(date +%s) - since < wait_s)); do
        waiting=0
        for trial in "$worktree"/saved/tune-*/[0-9][0-9][0-9]; do
            newest=0
            for file in "$trial"/*-last.pth; do newest=$(( $(stat -c %Y "$file") > newest ? $(stat -c %Y "$file") : newest )); done
            ((newest >= since)) || waiting=1  # still in the epoch it was in when stop was called
        done
        ((waiting)) || break
        sleep 5
    done
    for signal in TERM KILL; do  # KILL for what TERM has not ended in 30 s
        pids=$(search_pids)
        [[ -z $pids ]] && break
        kill -s "$signal" $pids 2>/dev/null || true
        for _ in $(seq 30); do running && sleep 1; done
    done
    bash scripts/search_carry.sh save "$worktree"
    echo "stopped; now commit: git add results/search && git commit"
    ;;
*)
    echo "$usage" >&2
    exit 2
    ;;
esac
