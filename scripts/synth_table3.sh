#!/usr/bin/env bash
# The paper's Table 3 (ablation) where the profile carries signal: the synthetic benchmark
# (python -m recbole_umi.datasets.synth, default knobs, seed 2022; regenerated in a few
# seconds if absent) in dataset_configs/synth.yaml's Taobao-like setting, K = 6 for the
# multi-interest models, 3 seeds, with the paired tests of UMI against each other model:
#   UMI, UMI-DAR (no dual-attention routing), UMI-IR (no interest refinement), UMI-HN
#   (no harder negatives), MIND+HN, YoutubeDNN.
# Writes results/synth-table3/ (runs/, table3.md, .csv, _tests.csv) and the ideal HitRates
# of the generated data to results/synth-table3/ideal.json.
#
#   bash scripts/synth_table3.sh [SYNTH_DIR]     # where the data go (default /tmp/recbole-umi-synth)
#
# Interrupted? Run it again: finished runs are kept and skipped. The runs go seed by seed
# (every model with seed 2020 first), so an interrupted table is complete for its first
# seeds: `--seeds=2020` in the last command below makes the table of those.
set -euo pipefail
synth=${1:-/tmp/recbole-umi-synth}
cd "$(dirname "$0")/.."
out=results/synth-table3
mkdir -p "$out"
if [[ ! -f $synth/synth/synth.inter ]]; then python -m recbole_umi.datasets.synth "$synth" --ideal; fi
cp "$synth/synth/ideal.json" "$synth/synth/generator.json" "$out/"
plan="$out/plan.yaml"
{
    for variant in UMI UMI-DAR UMI-IR UMI-HN MIND+HN; do echo "$variant: [tuning/synth/multi_interest.yaml]"; done
} > "$plan"
models=(UMI UMI-DAR UMI-IR UMI-HN MIND+HN YoutubeDNN)
common=(--dataset=synth "--data_path=$synth" "--out=$out" "--variant_files=$plan"
        --show_progress=False --state=WARNING)
seeds=(2020 2021 2022)
source scripts/two_streams.sh  # two_streams, join, compare_seeds
stream_a() { compare_seeds "$(join UMI UMI-IR MIND+HN)" stream_a; }
stream_b() { compare_seeds "$(join UMI-DAR UMI-HN YoutubeDNN)" stream_b; }
two_streams stream_a stream_b
python -m recbole_umi.compare "--models=$(join "${models[@]}")" "${common[@]}" --seeds=2020,2021,2022 --table=table3
rm -f "$out"/stream_[ab].md "$out"/stream_[ab].csv "$out"/stream_[ab]_tests.csv
