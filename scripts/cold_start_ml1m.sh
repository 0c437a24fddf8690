#!/usr/bin/env bash
# Where the profile pays off (docs/analysis.md, "Cold start"): each model at the settings its
# equal-budget search chose (results/tuning/ml-1m/*/best.yaml; the UMI ablations at UMI's),
# trained once per seed under the paper's protocol, then its validation and test users
# evaluated again with only their first k interactions as the history
# (eval_history_curve: k = 0, 1, 2, 3, 5, 10; k = 0 is the profile alone, so SASRec's
# encoder, which reads no profile, starts at k = 1; Popularity, which reads nothing, is the floor). Seeds 2021-2023: the searches trained
# with seed 2020, which is never a seed of a table of their choices. Two streams of one
# torch thread each. Writes results/ml-1m-coldstart/runs/ (each run file holds the curve),
# then the curve table and figure (scripts/cold_start_curve.py). Every run also tests its model
# with the users' history left out of the ranking (also_exclude_history: seen items), beside
# the paper's protocol, which ranks them; MIND, ComiRec+HN and ComiRec join for that. Then
# UMI, MIND+HN and YouTube DNN trained with history_dropout 0.5 (half of the training samples
# see the user's first j items, j uniform: training for short histories), in
# results/ml-1m-coldstart-dropout50, before SASRec's encoder.
#
#   bash scripts/cold_start_ml1m.sh [DATA_PATH]     # DATA_PATH holds ml-1m/ (default ../shared/data)
#
# Interrupted? Run it again: finished runs are kept and skipped, a run cut short continues.
set -euo pipefail
data_path=$(realpath "${1:-../shared/data}")
cd "$(dirname "$0")/.."
out=results/ml-1m-coldstart
mkdir -p "$out"
plan="$out/plan.yaml"
cat > "$plan" <<'EOF'
UMI: [results/tuning/ml-1m/UMI/best.yaml]
UMI-DAR: [results/tuning/ml-1m/UMI/best.yaml]
UMI-IR: [results/tuning/ml-1m/UMI/best.yaml]
MIND+HN: [results/tuning/ml-1m/MIND+HN/best.yaml]
YoutubeDNN: [results/tuning/ml-1m/YoutubeDNN/best.yaml]
ProfileDSSM: [results/tuning/ml-1m/ProfileDSSM/best.yaml]
SASRecMatching: [tuning/ml-1m/SASRec.yaml, results/tuning/ml-1m/SASRec/best.yaml]
Popularity: []
MIND: [results/tuning/ml-1m/MIND/best.yaml]
ComiRec+HN: [results/tuning/ml-1m/ComiRec+HN/best.yaml]
ComiRec: [results/tuning/ml-1m/ComiRec/best.yaml]
EOF
common=(--dataset=ml-1m "--data_path=$data_path" --seeds=2021,2022,2023 "--variant_files=$plan"
        --train_batch_size=1024 --show_progress=False --state=WARNING --also_exclude_history=True)
profile_curve="--eval_history_curve=[0,1,2,3,5,10]"
history_curve="--eval_history_curve=[1,2,3,5,10]"
source scripts/two_streams.sh  # two_streams, join

# SASRec's encoder (30-60 min a run) comes last in both streams: compare's lock per run lets
# the two share its three seeds.
history_only() { python -m recbole_umi.compare "--models=$1" "--out=$out" "${common[@]}" "$history_curve" --table="$2"; }
dropout() {
    python -m recbole_umi.compare "--models=$1" "--out=$out-dropout50" "${common[@]}" "$profile_curve" \
        --history_dropout=0.5 --table="$2"
}
stream_a() {
    python -m recbole_umi.compare "--models=$(join Popularity UMI YoutubeDNN ProfileDSSM UMI-DAR)" "--out=$out" "${common[@]}" \
        "$profile_curve" --table=stream_a && history_only ComiRec stream_a && dropout UMI,YoutubeDNN stream_a &&
        history_only SASRecMatching stream_a
}
stream_b() {
    python -m recbole_umi.compare "--models=$(join MIND+HN UMI-IR MIND)" "--out=$out" "${common[@]}" "$profile_curve" \
        --table=stream_b &&
    history_only ComiRec+HN stream_b && dropout MIND+HN stream_b && history_only SASRecMatching stream_b
}
two_streams stream_a stream_b
python scripts/cold_start_curve.py "$out" \
    --models=UMI,UMI-DAR,UMI-IR,MIND+HN,MIND,YoutubeDNN,ProfileDSSM,SASRecMatching,ComiRec+HN,ComiRec,Popularity \
    "--extra=UMI dropout 0.5=$out-dropout50:UMI" "--extra=MIND+HN dropout 0.5=$out-dropout50:MIND+HN" \
    "--extra=YoutubeDNN dropout 0.5=$out-dropout50:YoutubeDNN" --seeds=2021,2022,2023 --out="$out/curve"
# the figure of docs/analysis.md (HitRate@50, fewer models), the dropout models' own tests,
# the profile alone against popularity, and the seen-items table
curve() { python scripts/cold_start_curve.py "$@" --seeds=2021,2022,2023 --metrics=recall@50,recall@10,recall@300; }
curve "$out" --models=UMI,MIND+HN,YoutubeDNN,ProfileDSSM,SASRecMatching,ComiRec+HN,Popularity \
    "--extra=UMI dropout 0.5=$out-dropout50:UMI" "--extra=MIND+HN dropout 0.5=$out-dropout50:MIND+HN" \
    --out="$out/curve_hr50"
curve "$out-dropout50" --models=UMI,MIND+HN,YoutubeDNN "--extra=Popularity=$out:Popularity" \
    "--extra=ProfileDSSM=$out:ProfileDSSM" "--extra=UMI no dropout=$out:UMI" --out="$out-dropout50/curve"
curve "$out" --models=ProfileDSSM,Popularity --out="$out/profile_vs_popularity"
python scripts/seen_items_table.py "$out" \
    --models=UMI,UMI-DAR,UMI-IR,MIND+HN,MIND,YoutubeDNN,ProfileDSSM,SASRecMatching,ComiRec+HN,ComiRec,Popularity \
    --seeds=2021,2022,2023 --out="$out/seen_items"
