#!/usr/bin/env bash
# Regenerates the tables of docs/results-notebook.md's Part 2: the paper's Table 2 rows and
# the UMI ablations on MovieLens-1M under the paper's protocol, 3 training seeds, batch 1024
# (docs/results-notebook.md says why), into results/ml-1m/{table2,ablation}.{md,csv} and
# results/ml-1m/runs/, and UMI with refine_hidden_size 64 (chosen on validation) into
# results/ml-1m-refine64/.
#
#   bash scripts/reproduce_ml1m.sh [DATA_PATH]     # DATA_PATH holds ml-1m/; omit it to let
#                                                  # RecBole download ml-1m
#
# The runs go in two streams of one torch thread each, which on 2 cores gets about 1.4x
# more done than one 2-thread stream (docs/benchmarks.md). Interrupted? Run it again: every
# finished run is kept in results/ml-1m/runs/ and skipped.
set -euo pipefail
data_path=""
if [[ $# -ge 1 ]]; then data_path=$(realpath "$1"); fi
cd "$(dirname "$0")/.."
common=(--dataset=ml-1m --seeds=2020,2021,2022 --out=results/ml-1m --train_batch_size=1024 --show_progress=False)
if [[ -n $data_path ]]; then
    common+=("--data_path=$data_path")
else
    # download ml-1m once, here, rather than in both streams at the same time
    python -c "import recbole_umi; from recbole_umi.config import Config; from recbole_umi.data import create_dataset; create_dataset(Config('UMI', 'ml-1m', config_dict={'state': 'WARNING'}))"
fi
table2=UMI,ProfileDSSM,YoutubeDNN,MIND,MIND+HN,ComiRec,ComiRec+HN
ablation=UMI,UMI-DAR,UMI-IR,UMI-HN

stream_a() {
    python -m recbole_umi.compare --models=UMI,ComiRec,ComiRec+HN,UMI-DAR,UMI-IR "${common[@]}" --table=stream_a
}
stream_b() {
    python -m recbole_umi.compare --models=ProfileDSSM,YoutubeDNN,MIND,MIND+HN,UMI-HN "${common[@]}" --table=stream_b
    # UMI with the refinement width chosen on validation (docs/results-notebook.md, Part 2): its own folder,
    # since its settings differ from the other runs'
    python -m recbole_umi.compare --models=UMI "${common[@]/--out=results\/ml-1m/--out=results/ml-1m-refine64}" \
        --refine_hidden_size=64 --table=table
}
source scripts/two_streams.sh
two_streams stream_a stream_b
# every run is on disk now: these only read them and write the two tables
python -m recbole_umi.compare --models=$table2 "${common[@]}" --table=table2
python -m recbole_umi.compare --models=$ablation "${common[@]}" --table=ablation
rm -f results/ml-1m/stream_a.md results/ml-1m/stream_a.csv results/ml-1m/stream_b.md results/ml-1m/stream_b.csv
