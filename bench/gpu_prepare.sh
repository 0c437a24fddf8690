#!/usr/bin/env bash
# Prepares the speed issue's GPU run (bench/gpu_run.sh) on this machine, for a device machine
# that has Python 3.12 with a CUDA torch and can fetch nothing: the wheels the plugin needs
# beyond what that machine holds (/work/.library/device/KINDS.md lists its packages) into
# .whl/, and MovieLens-1M, compressed, into .device-data/ml-1m/ (both ignored by git; the
# tracked tree plus these must stay under the device's 64 MiB). faiss is left out: training
# and full-ranking evaluation do not import it (only retrieval, export and serving do).
#
#   bash bench/gpu_prepare.sh [DATA_PATH]     # DATA_PATH holds ml-1m/ (default ../shared/data)
#
# Then, on the device tool: run(command="bash bench/gpu_run.sh", carry=[".whl", ".device-data"],
# timeout_s=600).
set -euo pipefail
data_path=$(realpath "${1:-../shared/data}")
cd "$(dirname "$0")/.."
mkdir -p .whl .device-data/ml-1m
# recbole 1.2.1 and hyperopt 0.2.5 as setup.cfg pins them, with what the device lacks of their
# needs; setuptools < 81 (pkg_resources) as setup.cfg says why. pandas is the device's own (a
# pandas 2 wheel is 12 MB the tree cannot spare; recbole_umi.compat fills missing values in a
# way pandas 3 keeps, and gpu_run.sh prints the version)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl recbole==1.2.1 hyperopt==0.2.5 future==1.0.0 colorlog==6.12.0 \
    texttable==1.7.2 setuptools==80.9.0
for name in ml-1m.inter ml-1m.user ml-1m.item; do
    gzip -c "$data_path/ml-1m/$name" > ".device-data/ml-1m/$name.gz"
done
du -sh .whl .device-data
echo "tracked files: $(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) bytes (with .whl and .device-data: under 67108864)"
