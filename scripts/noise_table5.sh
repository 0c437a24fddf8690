#!/usr/bin/env bash
# The paper's Table 5 (noise immunity): UMI and MIND with clean profiles and with 10% of each
# profile field's values replaced (training and evaluation alike), 3 seeds, relative drops
# and paired tests of the drops (python -m recbole_umi.noise), on
#   synth: the synthetic benchmark (scripts/synth_table3.sh's data and settings, K = 6); the
#          clean runs go to Table 3's folder (results/synth-table3), where UMI's are already
#          Table 3's runs, so only MIND's clean runs and the noisy ones train;
#   ml-1m: MovieLens-1M with each model's tuned settings (results/tuning/ml-1m/*/best.yaml);
#          the clean runs are Table 2's (results/ml-1m-tuned, the same settings and seeds),
#          so only the noisy ones train.
# Writes results/<dataset>-noise/ (noisy/, table5.md, table5.csv).
#
#   bash scripts/noise_table5.sh synth|ml-1m [DATA_PATH]
#       synth: DATA_PATH is where the synthetic data are (default /tmp/recbole-umi-synth)
#       ml-1m: DATA_PATH holds ml-1m/ (default ../shared/data)
#
# Interrupted? Run it again: finished runs are kept and skipped.
# --allow_search_seed=True: these seeds include 2020, the seed the searches trained with (best.yaml
# names it); the table knowingly includes it (docs/results.md). A new table uses other seeds.
set -euo pipefail
dataset=${1:?synth or ml-1m}
cd "$(dirname "$0")/.."
out=results/$dataset-noise
extra=()
mkdir -p "$out"
plan="$out/plan.yaml"
case $dataset in
    synth)
        data_path=${2:-/tmp/recbole-umi-synth}
        if [[ ! -f $data_path/synth/synth.inter ]]; then python -m recbole_umi.datasets.synth "$data_path"; fi
        printf 'UMI: [tuning/synth/multi_interest.yaml]\nMIND: [tuning/synth/multi_interest.yaml]\n' > "$plan"
        extra=(--clean_from=results/synth-table3) ;;
    ml-1m)
        data_path=$(realpath "${2:-../shared/data}")
        for model in UMI MIND; do
            best=results/tuning/ml-1m/$model/best.yaml
            if [[ ! -f $best ]]; then echo "$model's search is not finished: run scripts/tune_ml1m.sh first" >&2; exit 1; fi
        done
        printf 'UMI: [results/tuning/ml-1m/UMI/best.yaml]\nMIND: [results/tuning/ml-1m/MIND/best.yaml]\n' > "$plan"
        extra=(--train_batch_size=1024 --clean_from=results/ml-1m-tuned --allow_search_seed=True) ;;
    *) echo "dataset must be synth or ml-1m" >&2; exit 2 ;;
esac
# two threads, or what OMP_NUM_THREADS says (1 beside another stream: docs/benchmarks.md)
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} python -m recbole_umi.noise --models=UMI,MIND "--dataset=$dataset" "--data_path=$data_path" \
    --profile_noise=0.1 --seeds=2020,2021,2022 "--out=$out" "--variant_files=$plan" \
    --show_progress=False --state=WARNING "${extra[@]}"
