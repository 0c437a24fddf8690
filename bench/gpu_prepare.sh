#!/usr/bin/env bash
# Prepares the speed issue's GPU run (bench/gpu_run.sh) on this machine, for a device machine
# that has Python 3.12 with a CUDA torch and can fetch nothing: the wheels the plugin needs
# beyond what that machine holds (/work/.library/device/KINDS.md lists its packages) into
# .whl/, and MovieLens-1M, xz-compressed (3.5 MB; gzip took 4.9), into .device-data/ml-1m/
# (both ignored by git). What travels (the tracked tree, untracked files git does not ignore,
# and these two) must stay under the device's 64 MiB: the script says how much room is left
# and fails when there is none (results/ grows with every run). faiss is left out: training
# and full-ranking evaluation do not import it (only retrieval, export and serving do).
#
#   bash bench/gpu_prepare.sh [DATA_PATH]     # DATA_PATH holds ml-1m/ (default ../shared/data)
#   EXTRA_WHEELS="name==version ..." bash bench/gpu_prepare.sh   # more wheels the same way
#                                             # (scripts/gpu_search.py: tune's hyperopt and its needs)
#
# Then, on the device tool: run(command="bash bench/gpu_run.sh", carry=[".whl", ".device-data"],
# timeout_s=600).
set -euo pipefail
data_path=$(realpath "${1:-../shared/data}")
cd "$(dirname "$0")/.."
mkdir -p .whl .device-data/ml-1m
# recbole 1.2.1 as setup.cfg pins it, with what the device lacks of its needs. Not hyperopt
# (nor future, its need): only tune imports it, and gpu_run.sh's compare and bench_train.py
# ran without either (2026-12-04). Not setuptools < 81 either, which setup.cfg pins for
# pkg_resources: only hyperopt and ray import that, the device has a setuptools of its own, and
# compare and bench_train.py ran on ml-1m with pkg_resources made unimportable and the slim
# wheel below (2026-12-05). pandas is the device's own (a pandas 2 wheel is 12 MB the tree
# cannot spare; recbole_umi.compat fills missing values in a way pandas 3 keeps, and
# gpu_run.sh prints the version)
rm -f .whl/setuptools-*.whl  # an earlier version's, unless EXTRA_WHEELS asks for it again
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl recbole==1.2.1 colorlog==6.12.0 texttable==1.7.2 ${EXTRA_WHEELS:-}
# RecBole's wheel without its example datasets (1.7 of its 2.1 MB; the device trains ml-1m from
# .device-data): with setuptools gone, 2.9 MB more of the device's room for results/. (Its hash
# no longer matches the index's, so each run of this script fetches the whole wheel again.)
python3 bench/slim_wheel.py .whl/recbole-1.2.1-py3-none-any.whl recbole/dataset_example/
rm -f .device-data/ml-1m/*.gz  # the earlier format
for name in ml-1m.inter ml-1m.user ml-1m.item; do
    [[ .device-data/ml-1m/$name.xz -nt $data_path/ml-1m/$name ]] ||
        xz -9e -c "$data_path/ml-1m/$name" > ".device-data/ml-1m/$name.xz"
done
du -sh .whl .device-data
limit=67108864
travels=$({ git ls-files -z; git ls-files -z --others --exclude-standard; find .whl .device-data -type f -print0; } |
    xargs -0 du -cb | awk '$2 == "total" {sum += $1} END {print sum}')
echo "what travels: $travels bytes, $((limit - travels)) left of the device's $limit"
if ((travels > limit)); then
    echo "over the device's limit: the device tool would refuse the call (ignore or carry less)" >&2
    exit 1
fi
