#!/usr/bin/env bash
# The "beyond SASRec" final table on the profile-rich synthetic benchmark: the ten models of
# the ml-1m search (scripts/final_table_ml1m.sh) on the data of the synthetic cold-start curve
# (scripts/cold_start_synth.sh's generator: the profile explains twice Table 3's share of a
# user's category affinities with half its noise, short histories, 10,000 users, 5,000 items,
# T = 20), each at the synthetic defaults (dataset_configs/synth.yaml; K = 6 for the
# multi-interest models, tuning/synth/multi_interest.yaml; SINE and RecBole's SASRec at their
# own), no history dropout, 3 training seeds (2021-2023; no search chose anything on these
# data), and the two-level test of UMISA against each other model. Writes
# results/synth-final/ (runs/, table.md, .csv, _tests.csv). About 5-12 minutes a run on one
# thread, 30 runs: about 3 hours on two streams.
#
#   bash scripts/final_table_synth.sh [SYNTH_DIR] [--key=value ...]   # default /tmp/recbole-umi-synth-cold
#
# --key=value settings go to every run (a smoke check: --epochs=1, with OUT=/tmp/x for the
# folder). Interrupted? Run it again: finished runs are kept and skipped.
set -euo pipefail
synth=${1:-/tmp/recbole-umi-synth-cold}
shift || true
extra=("$@")
cd "$(dirname "$0")/.."
out=${OUT:-results/synth-final}
mkdir -p "$out"
if [[ ! -f $synth/synth/synth.inter ]]; then  # the same data as scripts/cold_start_synth.sh
    python -m recbole_umi.datasets.synth "$synth" --users=10000 --items=5000 --profile_strength=4.0 \
        --user_noise=0.25 --length_median=15 --length_sigma=0.5 --min_length=5 --max_length=100 --seed=2022 --ideal
fi
cmp "$synth/synth/generator.json" "$out/generator.json" 2>/dev/null || cp "$synth/synth/generator.json" "$synth/synth/ideal.json" "$out/"
plan="$out/plan.yaml"
{
    for variant in UMISA UMI MIND ComiRecDR ComiRecSA; do echo "$variant: [tuning/synth/multi_interest.yaml]"; done
} > "$plan"
models=(UMISA UMI MIND ComiRecDR ComiRecSA YoutubeDNN ProfileDSSM SASRecMatching SASRec SINE)  # UMISA first: compared
seeds=(2021 2022 2023)
common=(--dataset=synth "--data_path=$synth" "--out=$out" "--variant_files=$plan" --MAX_ITEM_LIST_LENGTH=20
        --show_progress=False --state=WARNING "${extra[@]}")
source scripts/two_streams.sh  # two_streams, join, compare_seeds
stream_a() { compare_seeds "$(join UMISA MIND ComiRecSA YoutubeDNN SASRec)" stream_a; }
stream_b() { compare_seeds "$(join SASRecMatching UMI ComiRecDR ProfileDSSM SINE)" stream_b; }
two_streams stream_a stream_b
write_table "$(join "${models[@]}")"
