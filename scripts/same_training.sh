#!/usr/bin/env bash
# Does this checkout train a model as another checkout (a search's pin) does? One epoch of
# MODEL in each, on a copy of the embedded ml-100k whose times are exact in 32 bits (main sorts
# each user's interactions on the file's 64-bit times since bbf7dd3, the pins before it on
# RecBole's 32-bit tensors: on raw Unix seconds the two orders differ, on the ml-1m copy, whose
# times are positions, they do not), the same seed and settings; the epoch's training loss,
# its validation score and the result table must be the same, digit for digit.
#
#   bash scripts/same_training.sh OTHER_CHECKOUT MODEL [CONFIG_FILE ...]   # from this checkout
#   bash scripts/same_training.sh ../wt-search15 UMISA tuning/ml-1m-search/search.yaml \
#       tuning/ml-1m-search/UMISA.yaml /tmp/trial18.yaml                 # the settings of a trial
#
# Config files are read relative to each checkout (a relative path) or as given (absolute);
# EXTRA (optional) adds --key=value settings to both runs. Exit status 0: the same; 1: not
# (both logs named). A few minutes a run at T = 50 on one thread.
set -euo pipefail
[[ $# -ge 2 ]] || { sed -n '2,15p' "$0" >&2; exit 2; }
other=$(realpath "$1") model=$2
shift 2
here=$(realpath "$(dirname "$0")/..")
[[ -f $other/run_recbole_umi.py ]] || { echo "$other: not a checkout of recbole-umi" >&2; exit 2; }
files=$(IFS=,; echo "$*")
work=$(mktemp -d /tmp/same-training.XXXX)
data="$work/data/ml-100k"
mkdir -p "$data"
source=$(python -c "import os, recbole; print(os.path.join(os.path.dirname(recbole.__file__), 'dataset_example', 'ml-100k'))")
cp "$source/ml-100k.user" "$source/ml-100k.item" "$data/"
python - "$source/ml-100k.inter" "$data/ml-100k.inter" <<'EOF'
import sys
import pandas as pd

inter = pd.read_csv(sys.argv[1], sep="\t")
times = inter["timestamp:float"]
inter["timestamp:float"] = ((times - times.min()) // 4).astype("int64")  # below 2^24: exact in 32 bits
assert inter["timestamp:float"].max() < 2**24
inter.to_csv(sys.argv[2], sep="\t", index=False)
EOF
read -r -a extra <<< "${EXTRA:-}"
status=0
for name in here other; do
    if [[ $name == here ]]; then checkout=$here; else checkout=$other; fi
    log="$work/$name.log"
    (cd "$checkout" && OMP_NUM_THREADS=1 PYTHONPATH="$checkout" TORCHINDUCTOR_CACHE_DIR="$work/inductor" \
        python run_recbole_umi.py "--model=$model" --dataset=ml-100k "--data_path=$work/data" --epochs=1 --seed=2021 \
        ${files:+"--config_files=$files"} "--checkpoint_dir=$work/saved-$name" --show_progress=False --state=INFO \
        "${extra[@]}" > "$log" 2>&1) || { echo "$name: the run failed ($log)" >&2; exit 1; }
    # the epoch's loss and validation score (not its time) and the result table (its header
    # indented, its two rows)
    { grep -o 'train loss: [0-9.e+-]*\|valid_score: [0-9.e+-]*' "$log"; grep -A2 -E '^ +(HitRate|recall)@' "$log"; } \
        > "$work/$name.figures"
    [[ -s $work/$name.figures ]] || { echo "$name: no figures in $log" >&2; exit 1; }
done
if cmp -s "$work/here.figures" "$work/other.figures"; then
    echo "the same: $model trains in $here as in $other ($(head -n 1 "$work/here.figures"))"
else
    echo "not the same ($work/here.log, $work/other.log):" >&2
    diff "$work/here.figures" "$work/other.figures" >&2 || true
    status=1
fi
exit $status
