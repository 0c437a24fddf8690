#!/usr/bin/env bash
# The speed issue's GPU run (docs/benchmarks.md, "On a GPU"), one command on a machine with one
# CUDA GPU, about 9 minutes in all (BUDGET_S, default 510 s, bounds every step; part 1 leaves
# part 2 at least 240 s; PARTS="1 2" by default, PARTS=2 runs part 2 alone with all the time):
#   1. speed, one run at a time on an otherwise idle machine: bench/bench_train.py on ml-1m at
#      batch 1024 (end-to-end epoch, model-only epoch, evaluation; 2 repeats, medians) for UMI,
#      MIND and SASRecMatching, each in float32 and with mixed precision (RecBole's enable_amp
#      and enable_scaler), then UMI with its loss compiled (compile_step, 3 repeats);
#   2. one ml-1m run (training, then the test) per plugin model at its defaults, seed 2021, one
#      at a time, each in an equal share of the time left, epochs capped at 6 to fit; plus UMI
#      and SASRecMatching with mixed precision. RUNS="fp32 UMI,amp UMI" (FOLDER MODEL, commas
#      between) runs those alone: an equal share of 570 s over ten runs (57 s, start-up and the
#      test included) was too short for four of them on 2026-12-04.
# Writes $OUT/gpu_figures.json (every figure of both parts, and the machine) and $OUT/log.txt.
#
#   here, first:  bash bench/gpu_prepare.sh     # the wheels (.whl) and ml-1m (.device-data)
#   device tool:  run(command="bash bench/gpu_run.sh", carry=[".whl", ".device-data"], timeout_s=600)
#   smoke check on a CPU machine (ml-100k, 1 epoch, 1 repeat): SMOKE=1 bash bench/gpu_run.sh
#
# A step that fails or runs out of time is logged and the run goes on.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/recbole-umi-gpu-run}
work=$(mktemp -d)
mkdir -p "$out"
deadline=$((SECONDS + ${BUDGET_S:-510}))
parts=${PARTS:-1 2}
exec > >(tee "$out/log.txt") 2>&1
export PYTHONUNBUFFERED=1
if [[ ${SMOKE:-0} == 1 ]]; then  # ml-100k from this machine's RecBole: the wheel that travels has no datasets
    smoke_data=$(python3 -c 'import os, recbole; print(os.path.join(os.path.dirname(recbole.__file__), "dataset_example"))') ||
        exit 1
fi
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl &&
        export PYTHONPATH=/tmp/site || exit 1
fi
amps=(False True)
if [[ ${SMOKE:-0} == 1 ]]; then  # no mixed precision on a CPU
    data=(--dataset=ml-100k "--data_path=$smoke_data") repeats=1 epochs=1 amps=(False)
else
    for name in ml-1m.inter ml-1m.user ml-1m.item; do
        # python's lzma, else the xz program (bench/gpu_prepare.sh packs them with xz)
        [[ -f .device-data/ml-1m/$name ]] || python3 -c 'import lzma, shutil, sys
with lzma.open(sys.argv[1]) as packed, open(sys.argv[2], "wb") as plain: shutil.copyfileobj(packed, plain)' \
            ".device-data/ml-1m/$name.xz" ".device-data/ml-1m/$name" || xz -dk ".device-data/ml-1m/$name.xz" || exit 1
    done
    data=(--dataset=ml-1m --data_path=.device-data) repeats=2 epochs=6
fi
nvidia-smi || echo "no nvidia-smi: not a GPU machine"
python3 -c "import torch, pandas; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'pandas', pandas.__version__)"

step() {  # step LIMIT_S COMMAND...: run it within LIMIT_S and the time left (less RESERVE_S)
    local limit=$1 left=$((deadline - SECONDS - ${RESERVE_S:-0}))
    shift
    ((left < limit)) && limit=$left
    if ((limit < 10)); then echo "SKIPPED (no time left): $*"; return; fi
    timeout "$limit" "$@" || echo "FAILED or out of time (exit $?): $*"
}

if [[ " $parts " == *" 1 "* ]]; then
    echo "== 1. speed, one at a time"
    for model in UMI MIND SASRecMatching; do
        for amp in "${amps[@]}"; do
            RESERVE_S=240 step 75 python3 bench/bench_train.py "--model=$model" "${data[@]}" --train_batch_size=1024 \
                "--repeats=$repeats" "--enable_amp=$amp" "--enable_scaler=$amp" "--json=$work/bench_${model}_amp_$amp.json"
        done
    done
    # UMI's loss compiled (compile_step; inductor's GPU backend, Triton): one more repeat, so that the
    # median leaves out the first, which compiles
    RESERVE_S=240 step 150 python3 bench/bench_train.py --model=UMI "${data[@]}" --train_batch_size=1024 \
        "--repeats=$((repeats + 1))" --compile_step=True "--json=$work/bench_UMI_compiled.json"
fi

if [[ " $parts " == *" 2 "* ]]; then
    echo "== 2. runs of each model, one at a time"
    # one at a time: on 2026-12-04 ten at once (2 threads each, 16 cores) ran 8 of 10 out of
    # their 270 s, where UMI alone took 45 s for 6 epochs (the steps are launch-bound)
    runs=("fp32 UMI" "fp32 MIND+HN" "fp32 YoutubeDNN" "fp32 ProfileDSSM" "fp32 ComiRecDR" "fp32 ComiRecSA"
          "fp32 SASRecMatching" "fp32 UMISA")
    if [[ ${#amps[@]} == 2 ]]; then
        runs+=("amp UMI --enable_amp=True --enable_scaler=True"
               "amp SASRecMatching --enable_amp=True --enable_scaler=True")
    fi
    if [[ -n ${RUNS:-} ]]; then  # RUNS="fp32 UMI,amp UMI": these runs alone, each with a larger share
        keep=()
        for entry in "${runs[@]}"; do
            read -r -a run <<< "$entry"
            [[ ",$RUNS," == *",${run[0]} ${run[1]},"* ]] && keep+=("$entry")
        done
        ((${#keep[@]})) || { echo "RUNS=$RUNS names none of: ${runs[*]}"; exit 2; }
        runs=("${keep[@]}")
    fi
    for i in "${!runs[@]}"; do
        read -r -a run <<< "${runs[i]}"  # FOLDER MODEL [SETTING ...]
        share=$(((deadline - SECONDS) / (${#runs[@]} - i)))  # an equal share of the time left
        OMP_NUM_THREADS=4 step "$share" python3 -m recbole_umi.compare "--models=${run[1]}" "${data[@]}" \
            --seeds=2021 "--out=$work/${run[0]}" --train_batch_size=1024 "--epochs=$epochs" --show_progress=False \
            --state=WARNING "--table=${run[1]}" "${run[@]:2}" > "$work/${run[0]}-${run[1]}.log" 2>&1
        tail -n 4 "$work/${run[0]}-${run[1]}.log"
    done
fi

echo "== 3. the figures"
python3 - "$work" "$out/gpu_figures.json" <<'EOF'
import json, sys
from pathlib import Path

import torch

work, target = Path(sys.argv[1]), Path(sys.argv[2])
keep = ("variant", "settings", "wall_s", "epochs", "best_epoch", "best_valid_result", "test_result", "code")
figures = {
    "machine": {"torch": torch.__version__, "cuda": torch.version.cuda,
                "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
    "speed": {path.stem: json.loads(path.read_text()) for path in sorted(work.glob("bench_*.json"))},
    "complete_runs": {f"{folder.name}/{path.stem}": {k: v for k, v in json.loads(path.read_text()).items() if k in keep}
                      for folder in sorted(work.iterdir()) if folder.is_dir()
                      for path in sorted((folder / "runs").glob("*.json"))},
}
target.write_text(json.dumps(figures, indent=2) + "\n")
print(f"{target}: {len(figures['speed'])} speed figures, {len(figures['complete_runs'])} complete runs")
EOF
