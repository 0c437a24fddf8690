# Sourced by the experiment scripts: run two shell functions side by side, one torch thread
# each (on 2 cores about 1.4x the work of one 2-thread stream, docs/benchmarks.md), and the
# two helpers their streams are written with.
#
#   two_streams stream_a stream_b    # returns 1 if either failed; Ctrl-C stops both
#   join A B C                       # A,B,C
#   compare_seeds MODELS TABLE       # compare's runs of MODELS one seed at a time: the caller's
#                                    # arrays seeds and common (compare's other arguments); a
#                                    # seed that fails does not stop the later ones (returns 1)
#   write_table MODELS               # the table of MODELS over every seed from the runs on disk
#                                    # (--table_only: nothing trains), then the streams' own
#                                    # tables removed from the caller's folder out

join() { local IFS=,; echo "$*"; }

compare_seeds() {
    local models=$1 table=$2 seed failed=()
    for seed in "${seeds[@]}"; do  # a run that keeps failing must not hold back every later seed
        python -m recbole_umi.compare "--models=$models" "${common[@]}" "--seeds=$seed" "--table=$table" ||
            failed+=("$seed")
    done
    if ((${#failed[@]})); then
        echo "compare of $models failed for seed(s) ${failed[*]} (above); the other seeds went on" >&2
        return 1
    fi
}

write_table() {
    python -m recbole_umi.compare "--models=$1" "${common[@]}" "--seeds=$(join "${seeds[@]}")" --table=table \
        --table_only=True
    rm -f "$out"/stream_[ab].md "$out"/stream_[ab].csv "$out"/stream_[ab]_tests.csv
}

two_streams() {
    export OMP_NUM_THREADS=1
    "$1" &
    local first=$!
    "$2" &
    local second=$!
    trap 'trap - INT TERM; kill 0' INT TERM  # Ctrl-C stops both streams and their python processes (once: kill 0 signals this shell too)
    local failed=0
    wait "$first" || failed=1
    wait "$second" || failed=1
    if [[ $failed -ne 0 ]]; then
        echo "a stream failed (its log is above); what finished is kept on disk" >&2
        return 1
    fi
}
