#!/usr/bin/env bash
# Where the profile pays off, on data made for it (docs/analysis.md, "Cold start on the
# synthetic benchmark"): the cold-start curve (k = 0, 1, 2, 3, 5, 10 first interactions as the
# history; k = 0 is the profile alone) on a synthetic benchmark whose generator gives the
# profile more to decide than Table 3's: the profile explains twice the share of a user's
# category affinities (--profile_strength=4, against 2) with half the unexplained noise
# (--user_noise=0.25, against 0.5), and histories are short (median 11 clicks after repeats,
# at most 54: --length_median=15 --length_sigma=0.5 --min_length=5), so that the clicks alone
# leave the interests uncertain. Knowing the profile alone is worth HitRate@50 0.44 there
# against popularity's 0.16 (ideal.json; Table 3's data: 0.21 against 0.13). 10,000 users and
# 5,000 items keep a run at about 5 minutes on one thread; T = 20 covers every history but a few.
# Every trained model at the synthetic defaults (dataset_configs/synth.yaml; K = 6 for the
# multi-interest models, tuning/synth/multi_interest.yaml) and trained with history_dropout 0.5,
# the training for short histories that ml-1m's curve showed the profile models need at k = 0
# (SASRec's encoder, which reads no profile and refuses it, trained without; from k = 1);
# UMI without it beside them (results/synth-coldstart-nodropout). Seeds 2020-2022 (no search
# chose anything on these data). Two streams of one torch thread each, about 80 minutes.
#
#   bash scripts/cold_start_synth.sh [SYNTH_DIR]     # where the data go (default /tmp/recbole-umi-synth-cold)
#
# Interrupted? Run it again: finished runs are kept and skipped, a run cut short continues.
set -euo pipefail
synth=${1:-/tmp/recbole-umi-synth-cold}
cd "$(dirname "$0")/.."
out=results/synth-coldstart
mkdir -p "$out" "$out-nodropout"
if [[ ! -f $synth/synth/synth.inter ]]; then
    python -m recbole_umi.datasets.synth "$synth" --users=10000 --items=5000 --profile_strength=4.0 \
        --user_noise=0.25 --length_median=15 --length_sigma=0.5 --min_length=5 --max_length=100 --seed=2022 --ideal
fi
cmp "$synth/synth/generator.json" "$out/generator.json" 2>/dev/null || cp "$synth/synth/generator.json" "$synth/synth/ideal.json" "$out/"
plan="$out/plan.yaml"
{
    for variant in UMI UMI-DAR UMI-IR MIND+HN UMISA; do echo "$variant: [tuning/synth/multi_interest.yaml]"; done
} > "$plan"
cp "$plan" "$out-nodropout/plan.yaml"
seeds=2020,2021,2022
common=(--dataset=synth "--data_path=$synth" "--seeds=$seeds" "--variant_files=$plan" --MAX_ITEM_LIST_LENGTH=20
        --show_progress=False --state=WARNING)
profile_curve="--eval_history_curve=[0,1,2,3,5,10]"
source scripts/two_streams.sh  # two_streams, join
curve() { python -m recbole_umi.compare "--models=$1" "--out=$out" "${common[@]}" --history_dropout=0.5 "$2" --table="$3"; }
# SASRec's encoder reads no profile: history dropout would train it on empty histories (refused)
history_only() { python -m recbole_umi.compare --models=SASRecMatching "--out=$out" "${common[@]}" \
    "--eval_history_curve=[1,2,3,5,10]" --table="$1"; }
# compare's lock per run lets the two streams share the runs: each takes the next one free
stream_a() {
    curve "$(join Popularity UMI UMI-DAR MIND+HN YoutubeDNN)" "$profile_curve" stream_a &&
        curve "$(join UMISA UMI-IR ProfileDSSM)" "$profile_curve" stream_a &&
        history_only stream_a &&
        python -m recbole_umi.compare --models=UMI "--out=$out-nodropout" "${common[@]}" "$profile_curve" --table=table
}
stream_b() {
    sleep 5
    curve "$(join UMISA UMI-IR ProfileDSSM)" "$profile_curve" stream_b &&
        history_only stream_b &&
        python -m recbole_umi.compare --models=UMI "--out=$out-nodropout" "${common[@]}" "$profile_curve" --table=table &&
        curve "$(join Popularity UMI UMI-DAR MIND+HN YoutubeDNN)" "$profile_curve" stream_b
}
two_streams stream_a stream_b
rm -f "$out"/stream_[ab].md "$out"/stream_[ab].csv "$out"/stream_[ab]_tests.csv
python scripts/cold_start_curve.py "$out" --models=UMISA,UMI,UMI-DAR,UMI-IR,MIND+HN,YoutubeDNN,ProfileDSSM,SASRecMatching,Popularity \
    "--extra=UMI no dropout=$out-nodropout:UMI" --seeds=$seeds --metrics=recall@50,recall@10,recall@100 \
    --title="Cold start on the synthetic benchmark made for the profile" --out="$out/curve"
# UMI against each other model (and UMI trained without dropout), and the profile alone against popularity
python scripts/cold_start_curve.py "$out" --models=UMI,UMI-DAR,UMI-IR,MIND+HN,YoutubeDNN,ProfileDSSM,Popularity \
    "--extra=UMI no dropout=$out-nodropout:UMI" --seeds=$seeds --metrics=recall@50,recall@10,recall@100 --out="$out/curve_umi"
python scripts/cold_start_curve.py "$out" --models=ProfileDSSM,Popularity --seeds=$seeds \
    --metrics=recall@50,recall@10,recall@100 --out="$out/profile_vs_popularity"
rm -f "$out/curve_umi.png" "$out/profile_vs_popularity.png"  # the tables are what docs/analysis.md reads
