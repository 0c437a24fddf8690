#!/usr/bin/env bash
# What the profile's information is worth on the profile-rich synthetic benchmark: the five
# models of the synthetic final table (scripts/final_table_synth.sh) that read the profile
# (UMISA, UMI, MIND, YouTube DNN, ProfileDSSM), each again with only the profile's 14 noise
# fields (tuning/synth/noise_profile.yaml: the generator draws them independently of every
# click), on the same data, settings and seeds (2021-2023), so that each model minus itself
# without the profile's information is a paired two-level test (scripts/claims_tests.py, family
# "the profile's information, synthetic"). The same architecture reads a profile that tells
# it nothing: what is left of a model's score is what its history and interests give.
# Writes results/synth-final-noise-profile/ (runs/, table.md). About 12 minutes a run for
# UMISA, 1-6 for the others: about 40 minutes on two streams.
#
#   bash scripts/synth_profile_ablation.sh [SYNTH_DIR] [--key=value ...]   # default /tmp/recbole-umi-synth-cold
#
# PROFILE=FILE reads another profile (default tuning/synth/noise_profile.yaml) and OUT=FOLDER
# writes elsewhere (both relative to the checkout's root): the control arm, with one noise
# field where 14 random fields could single a user out (tuning/synth/one_noise_field.yaml), is
#   OUT=results/synth-final-one-noise-field PROFILE=tuning/synth/one_noise_field.yaml bash scripts/synth_profile_ablation.sh
#
# Run it from the checkout the final table ran (its runs' code, results/synth-final/runs/*.json
# "code"), so that the pairs are of one code. Interrupted? Run it again: finished runs are
# kept and skipped.
set -euo pipefail
synth=${1:-/tmp/recbole-umi-synth-cold}
shift || true
extra=("$@")
cd "$(dirname "$0")/.."
final=results/synth-final
out=${OUT:-results/synth-final-noise-profile}
profile=${PROFILE:-tuning/synth/noise_profile.yaml}
[[ -f $profile ]] || { echo "PROFILE: no file $profile" >&2; exit 2; }
if [[ ! -f $synth/synth/synth.inter ]] || ! cmp -s "$synth/synth/generator.json" "$final/generator.json"; then
    echo "$synth/synth does not hold the final table's data ($final/generator.json): scripts/final_table_synth.sh makes them" >&2
    exit 1
fi
mkdir -p "$out"
cp "$final/generator.json" "$out/"
plan="$out/plan.yaml"
for variant in UMISA UMI MIND; do echo "$variant: [tuning/synth/multi_interest.yaml]"; done > "$plan"
seeds=(2021 2022 2023)
common=(--dataset=synth "--data_path=$synth" "--out=$out" "--variant_files=$plan" --MAX_ITEM_LIST_LENGTH=20
        "--config_files=$profile" --show_progress=False --state=WARNING "${extra[@]}")
source scripts/two_streams.sh
stream_a() { compare_seeds UMISA stream_a; }
stream_b() { compare_seeds "$(join UMI MIND YoutubeDNN ProfileDSSM)" stream_b; }
two_streams stream_a stream_b
write_table "$(join UMISA UMI MIND YoutubeDNN ProfileDSSM)"
