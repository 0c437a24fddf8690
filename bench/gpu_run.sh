#!/usr/bin/env bash
# The speed issue's GPU run (docs/benchmarks.md, "On a GPU"), one command on a machine with one
# CUDA GPU, about 9 minutes in all (BUDGET_S, default 510 s, bounds every step; part 1 leaves
# part 2 at least 240 s):
#   1. speed, one run at a time on an otherwise idle machine: bench/bench_train.py on ml-1m at
#      batch 1024 (end-to-end epoch, model-only epoch, evaluation; 2 repeats, medians) for UMI,
#      MIND and SASRecMatching, each in float32 and with mixed precision (RecBole's enable_amp
#      and enable_scaler), then UMI with its loss compiled (compile_step, 3 repeats);
#   2. one complete ml-1m run (training with early stopping, then the test) per plugin model at
#      its defaults, seed 2021, all at once on the one GPU (their wall times are shared-GPU
#      times), plus UMI and SASRecMatching with mixed precision; epochs are capped at 20 to fit.
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
exec > >(tee "$out/log.txt") 2>&1
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl &&
        export PYTHONPATH=/tmp/site || exit 1
fi
amps=(False True)
if [[ ${SMOKE:-0} == 1 ]]; then  # no mixed precision on a CPU
    data=(--dataset=ml-100k) repeats=1 epochs=1 amps=(False)
else
    for name in ml-1m.inter ml-1m.user ml-1m.item; do
        [[ -f .device-data/ml-1m/$name ]] || gunzip -k ".device-data/ml-1m/$name.gz" || exit 1
    done
    data=(--dataset=ml-1m --data_path=.device-data) repeats=2 epochs=20
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

echo "== 1. speed, one at a time"
for model in UMI MIND SASRecMatching; do
    for amp in "${amps[@]}"; do
        RESERVE_S=240 step 75 python3 bench/bench_train.py "--model=$model" "${data[@]}" --train_batch_size=1024 \
            "--repeats=$repeats" "--enable_amp=$amp" "--enable_scaler=$amp" "--json=$work/bench_${model}_amp_$amp.json"
    done
done
# UMI's loss compiled (compile_step; inductor's GPU backend, Triton): one more repeat, so that the
# median leaves out the first, which compiles
RESERVE_S=240 step 90 python3 bench/bench_train.py --model=UMI "${data[@]}" --train_batch_size=1024 \
    "--repeats=$((repeats + 1))" --compile_step=True "--json=$work/bench_UMI_compiled.json"

echo "== 2. complete runs, all at once"
complete() {  # complete FOLDER MODEL [SETTING ...]
    local folder=$1 model=$2
    shift 2
    OMP_NUM_THREADS=2 step $((deadline - SECONDS)) python3 -m recbole_umi.compare "--models=$model" "${data[@]}" \
        --seeds=2021 "--out=$work/$folder" --train_batch_size=1024 "--epochs=$epochs" --show_progress=False \
        --state=WARNING "--table=$model" "$@" > "$work/$folder-$model.log" 2>&1
    tail -n 4 "$work/$folder-$model.log"
}
pids=()  # waited for by name: a bare wait would also wait for the log's tee
for model in UMI MIND+HN YoutubeDNN ProfileDSSM ComiRecDR ComiRecSA SASRecMatching UMISA; do
    complete fp32 "$model" &
    pids+=($!)
done
if [[ ${#amps[@]} == 2 ]]; then
    for model in UMI SASRecMatching; do
        complete amp "$model" --enable_amp=True --enable_scaler=True &
        pids+=($!)
    done
fi
wait "${pids[@]}"

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
