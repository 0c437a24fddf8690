#!/usr/bin/env bash
# Does mixed precision keep float32's accuracy? RecBole's `enable_amp: True` runs the training
# loss under torch.autocast; on a CPU that is bfloat16, whose matrix products this machine's
# AMX units run faster (the causal encoders' steps at T = 50 about 1.3-1.6x faster than
# compiled float32 in a first, contended look: the closing note of 2026-12-04). Before the
# search's encoder models (SASRecMatching, UMISA, RecBole's SASRec and SINE) train so, check
# it on validation users, as the windows were checked: SASRecMatching and UMISA with the
# search's fixed settings (tuning/ml-1m-search/search.yaml and <model>.yaml: compile_step,
# SASRecMatching's windows of stride 5) at the encoder settings SASRec's earlier search chose
# (as results/ml-1m-umisa), seeds 2021-2023, each in float32 and in bfloat16:
#   results/ml-1m-amp-fp32    float32
#   results/ml-1m-amp-bf16    enable_amp: True
# Each folder's table (test users, with the validation scores in the run files). The two-level
# tests of bfloat16 against float32 are in scripts/claims_tests.py's pairs; the outcome (not
# adopted: SASRecMatching lost a point on validation) in docs/benchmarks.md. One stream of one
# torch thread (the search keeps the other);
# 5-30 minutes a run, 12 runs.
#
#   bash scripts/amp_ml1m.sh [DATA_PATH]   # DATA_PATH holds ml-1m/ (default ../shared/data)
#
# Interrupted? Run it again: finished runs are kept and skipped, a run cut short continues. Its
# runs span sessions, so run it from the search's pinned checkout (results/search/ml-1m/README.md;
# copy this script there): work on main does not change their code midway.
set -euo pipefail
data_path=$(realpath "${1:-../shared/data}")
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
source scripts/two_streams.sh  # two_streams, join
encoder=(tuning/ml-1m/SASRec.yaml results/tuning/ml-1m/SASRec/best.yaml tuning/ml-1m-search/search.yaml)
run() {  # run PRECISION SEED
    local out=results/ml-1m-amp-$1 amp=False
    [[ $1 == bf16 ]] && amp=True
    mkdir -p "$out"
    {
        echo "# SASRec's chosen encoder settings (as results/ml-1m-umisa), then the search's fixed settings"
        local model
        for model in SASRecMatching UMISA; do
            echo "$model: [$(join "${encoder[@]}" "tuning/ml-1m-search/$model.yaml")]"
        done
    } > "$out/plan.yaml"
    python -m recbole_umi.compare --models=SASRecMatching,UMISA --dataset=ml-1m "--data_path=$data_path" \
        "--seeds=$2" "--variant_files=$out/plan.yaml" "--out=$out" "--enable_amp=$amp" \
        --show_progress=False --state=WARNING --table=table_seed$2
}
for seed in 2021 2022 2023; do  # seed by seed: both precisions of a seed before the next seed
    run fp32 "$seed"
    run bf16 "$seed"
done
for precision in fp32 bf16; do
    out=results/ml-1m-amp-$precision
    python -m recbole_umi.compare --models=SASRecMatching,UMISA --dataset=ml-1m "--data_path=$data_path" \
        --seeds=2021,2022,2023 "--variant_files=$out/plan.yaml" "--out=$out" \
        "--enable_amp=$([[ $precision == bf16 ]] && echo True || echo False)" --show_progress=False \
        --state=WARNING --table=table --table_only=True
    rm -f "$out"/table_seed*.md "$out"/table_seed*.csv "$out"/table_seed*_tests.csv
done
