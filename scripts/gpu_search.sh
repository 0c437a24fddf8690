#!/usr/bin/env bash
# The ml-1m search's trials on a lent GPU (issue "beyond SASRec"): runs scripts/search_ml1m.sh,
# unchanged, for MODEL ... on the device machine, in the search's pinned code, from the trials
# and carried checkpoints that main's results hold, for BUDGET_S seconds (default 450); then
# stops it as a session's end does (the epochs being trained may end, within 45 s) and sends
# back, in $OUT/back-<model>.tar, each model's trials/, carry/, tuning.json and widened.hyper
# for scripts/gpu_search.py import.
# The search's proposals are random draws from its seed, one per trial (--algo=random), and its
# pruning reads the finished trials on disk, so trials made here are the trials this machine
# would have made; only the device and the libraries differ (each trial's record says which).
#
#   here:         python scripts/gpu_search.py prepare        # the pinned code (.pinned), the wheels, ml-1m
#   device tool:  run(command="bash scripts/gpu_search.sh UMISA SASRec SASRecMatching SINE",
#                     carry=[".whl", ".device-data", ".pinned"], timeout_s=600)
#   here, before: bash scripts/search_session.sh stop 900 ../wt-search15   (then prepare)
#   here, after:  python scripts/gpu_search.py restore                      (the folders prepare set aside)
#                 python scripts/gpu_search.py import FILES_AT/back-*.tar --checkout=../wt-search15
set -uo pipefail
(($#)) || { echo "usage: bash scripts/gpu_search.sh MODEL [MODEL ...]" >&2; exit 2; }
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/recbole-umi-gpu-search}
mkdir -p "$out"
exec > >(tee "$out/log.txt") 2>&1
export PYTHONUNBUFFERED=1
start=$SECONDS
[[ -f .pinned/PIN ]] || { echo ".pinned/ is missing: run python scripts/gpu_search.py prepare first" >&2; exit 1; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl &&
    export PYTHONPATH=/tmp/site || exit 1
python3 -c "import hyperopt, recbole" || { echo "tune's libraries do not import (above): nothing run" >&2; exit 1; }
instances=$(((${STREAMS:-4} + 1) / 2))
if ((2 + $# > 8)); then  # log.txt, search.log and one archive a model: 8 files at most come back
    echo "at most 6 models a call (8 files come back), got $#" >&2
    exit 2
fi
command -v python > /dev/null || { mkdir -p /tmp/bin && ln -sf "$(command -v python3)" /tmp/bin/python && export PATH=/tmp/bin:$PATH; }
for name in ml-1m.inter ml-1m.user ml-1m.item; do
    [[ -f .device-data/ml-1m/$name ]] || python3 -c 'import lzma, shutil, sys
with lzma.open(sys.argv[1]) as packed, open(sys.argv[2], "wb") as plain: shutil.copyfileobj(packed, plain)' \
        ".device-data/ml-1m/$name.xz" ".device-data/ml-1m/$name" || exit 1
done
nvidia-smi -L || echo "no nvidia-smi: not a GPU machine"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
data=$(realpath .device-data)
cd .pinned || exit 1
echo "the search's code: $(cat PIN)"
rm -rf results && ln -s ../results results  # main's trials and carried checkpoints
busy=$(python3 ../scripts/carry_checkpoints.py runners results)
if [[ -n $busy ]]; then  # its stop below would stop them too
    echo "runs train on this checkout's results already (is this the device machine?): $busy" >&2
    exit 1
fi
folders=()
for model in "$@"; do folders+=("results/search/ml-1m/$model"); done
python3 ../scripts/carry_checkpoints.py restore . "${folders[@]}"
# STREAMS (default 4) streams in all: search_ml1m.sh runs two, and each stream takes the next model
# no other stream holds, so that a second instance's streams take the third and fourth models (one
# GPU is shared: on 2026-12-04 ten runs at once each ran more than 6x slower than one alone, so
# not more). Each instance in a process group of its own: stopping it (two_streams.sh stops its
# whole group) leaves this script going.
searches=()
for ((i = 0; i < instances; i++)); do
    ((i)) && sleep 40  # after the streams before have taken their models
    setsid bash scripts/search_ml1m.sh "$data" "$@" > "$out/search-$i.log" 2>&1 &
    searches+=($!)
done
left=$((${BUDGET_S:-450} - (SECONDS - start)))
((left > 0)) && sleep "$left"
python3 ../scripts/carry_checkpoints.py stop results "${folders[@]}" --seconds=45 --checkout=.
for pid in "${searches[@]}"; do kill -TERM -- "-$pid" 2> /dev/null; done  # anything the stop missed
wait "${searches[@]}"
python3 ../scripts/carry_checkpoints.py save . "${folders[@]}"  # again: a run the stop missed (none where it found all)
cat "$out"/search-*.log > "$out/search.log" && rm -f "$out"/search-*.log
grep -E "^\[|FAILED|Error" "$out/search.log" | tail -n 40
for folder in "${folders[@]}"; do  # one archive a model: at most 16 MiB a file comes back
    paths=()
    for part in trials carry; do [[ -d $folder/$part ]] && paths+=("$folder/$part"); done
    for part in tuning.json widened.hyper; do [[ -f $folder/$part ]] && paths+=("$folder/$part"); done
    ((${#paths[@]})) || continue
    tar -chf "$out/back-${folder##*/}.tar" "${paths[@]}" && tar -tvf "$out/back-${folder##*/}.tar"
    size=$(stat -c %s "$out/back-${folder##*/}.tar")
    ((size > 16 * 1024 * 1024)) && echo "back-${folder##*/}.tar is $size bytes: over the 16 MiB that come back" >&2
done
echo "done in $((SECONDS - start)) s"
