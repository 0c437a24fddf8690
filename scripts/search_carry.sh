#!/usr/bin/env bash
# Carries a search's unfinished trials from one machine to the next. A trial cut short by the
# end of a session continues from its last finished epoch only where its checkpoints are still
# in the search's checkout (saved/tune-<model>-<hash>/<trial>/); a new machine has a fresh
# checkout, and a trial longer than a session (SASRec's and UMISA's at T = 50 take hours)
# would start again every session and never finish. So, with the search stopped:
#
#   bash scripts/search_carry.sh save CHECKOUT [SEARCH]     # before the session ends, then commit SEARCH-carry
#   bash scripts/search_carry.sh restore CHECKOUT [SEARCH]  # on the next machine, before restarting the search
#
# CHECKOUT is the search's pinned checkout (results/search/ml-1m/README.md), SEARCH its results
# folder (default results/search/ml-1m, relative to this repository). save copies each
# unfinished trial's newest -last checkpoint and the best checkpoint beside it into
# SEARCH-carry/<model>/<trial>.tar.xz (tracked, so the next session gets them; xz takes a
# pair to about 45%, as the two are often the same epoch) and removes the carried trials that
# have finished since (their record is in SEARCH/<model>/trials/).
# restore copies them back to where tune looks for them on this machine,
# CHECKOUT/saved/tune-<model>-<hash of SEARCH/<model>'s real path>/<trial>/ (runs.py's
# checkpoint_root), and tune continues the interrupted trial (it checks the checkpoint's
# digest and its settings against the trial's).
# Stop the search first (pkill -f search_ml1m.sh; pkill -f recbole_umi.tune): a checkpoint
# copied while a trial writes it could be half a file (tune would then start the trial again).
set -euo pipefail
usage="usage: bash scripts/search_carry.sh save|restore CHECKOUT [SEARCH]"
action=${1:?$usage}
checkout=$(realpath "${2:?$usage}")
cd "$(dirname "$0")/.."
search=${3:-results/search/ml-1m}
carry=${search%/}-carry
[[ -d $search ]] || { echo "no search results in $search" >&2; exit 1; }
for pid in $(pgrep -f "recbole_umi.tune" || true); do
    if [[ $(readlink "/proc/$pid/cwd" || true) == "$checkout" ]]; then
        echo "a search is running in $checkout (pid $pid): stop it first, its checkpoints may be half-written" >&2
        exit 1
    fi
done
shopt -s nullglob

finished() {  # finished MODEL TRIAL: the trial's record is written
    [[ -f $search/$1/trials/$2.json ]]
}

trial_folder() {  # trial_folder MODEL/TRIAL: where tune keeps that trial's checkpoints in CHECKOUT
    local model=${1%/*} out digest
    out=$(realpath -m "$checkout/$search/$model")
    digest=$(printf %s "$out" | sha1sum | cut -c1-8)
    echo "$checkout/saved/tune-$model-$digest/${1#*/}"
}

case $action in
save)
    for trial in "$checkout"/saved/tune-*/[0-9][0-9][0-9]; do
        lasts=("$trial"/*-last.pth)
        ((${#lasts[@]})) || continue  # no epoch finished yet: nothing to continue from
        last=$(ls -t "${lasts[@]}" | head -1)  # as tune picks it: the newest
        best=${last%-last.pth}.pth
        model=$(basename "$(dirname "$trial")")  # tune-<model>-<hash>
        model=${model#tune-}
        name=${model%-*}/$(basename "$trial")
        [[ $(trial_folder "$name") == "$trial" ]] || continue  # another search's trial
        files=("$(basename "$last")")
        if [[ -f $best ]]; then files+=("$(basename "$best")"); fi
        mkdir -p "$carry/${name%/*}"
        tar -cJf "$carry/$name.tar.xz.tmp" -C "$trial" "${files[@]}"
        mv "$carry/$name.tar.xz.tmp" "$carry/$name.tar.xz"
        echo "carried $name ($(du -h "$carry/$name.tar.xz" | cut -f1))"
    done
    for kept in "$carry"/*/[0-9][0-9][0-9].tar.xz; do
        name=$(basename "$(dirname "$kept")")/$(basename "$kept" .tar.xz)
        if finished "$(dirname "$name")" "$(basename "$name")"; then
            rm "$kept"
            echo "dropped $name (finished)"
        elif [[ ! -d $(trial_folder "$name") ]]; then
            echo "kept $name: not in $checkout/saved (restore it before the search runs again)" >&2
        fi
    done
    find "$carry" -mindepth 1 -type d -empty -delete 2>/dev/null || true
    ;;
restore)
    for kept in "$carry"/*/[0-9][0-9][0-9].tar.xz; do
        name=$(basename "$(dirname "$kept")")/$(basename "$kept" .tar.xz)
        if finished "$(dirname "$name")" "$(basename "$name")"; then
            echo "skipped $name (finished; save drops it)"
            continue
        fi
        target=$(trial_folder "$name")
        mkdir -p "$target"
        # a newer epoch already there stays (tar says so on stderr: not a problem)
        tar -xJf "$kept" -C "$target" --keep-newer-files 2> >(grep -v "is newer or same age" >&2)
        echo "restored $name into $target"
    done
    ;;
*)
    echo "$usage" >&2
    exit 2
    ;;
esac
