"""Training / evaluation speed and memory of a model on a dataset under its dataset config.

For each repeat it measures, on the same model and batches:
  * end-to-end: one training epoch through RecBole's TrainDataLoader and Trainer;
  * model-only: the same number of samples through the same module, batch size and
    negatives, with the training tensors already in memory (no RecBole data pipeline);
  * evaluation: Trainer.evaluate on the validation and test users.
The pipeline overhead is model-only throughput / end-to-end throughput. Peak memory is the
process's maximum resident set size. Run it with the machine otherwise idle: on 2 cores a
second busy process slows torch's thread pool by an order of magnitude.

    python bench/bench_train.py --model=UMI --dataset=ml-1m --data_path=../shared/data \
        --train_batch_size=1024 --n_negatives=5 --repeats=3

``targets_per_s`` counts what an epoch trains: a row is one target, except under
``train_sampling: windows``, where each of a row's last ``window_stride`` history positions
is one (every position without a stride; compare
``--model=SASRecMatching --train_sampling=windows --train_batch_size=102`` with the rows'
``--train_batch_size=1024``: about the same targets a batch).

On a GPU (RecBole's ``use_gpu``, the default where CUDA is there) the timers wait for the
device (``torch.cuda.synchronize``), the training rows of the model-only loop are moved to
it before the clock starts, ``--enable_amp=True`` (``--enable_scaler=True``) runs the
model-only loop under the same autocast (gradient scaler) as RecBole's trainer, and the
figures add the device and its peak allocated memory (bench/gpu_run.sh runs it so).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recbole_umi import compat  # noqa: E402

compat.apply()  # before anything imports RecBole
from recbole.data.interaction import Interaction  # noqa: E402
from recbole.utils import get_trainer, init_logger, init_seed  # noqa: E402

from recbole_umi.allocator import as_configured  # noqa: E402
from recbole_umi.config import Config, parse_cmd_args  # noqa: E402
from recbole_umi.data import create_dataset, data_preparation  # noqa: E402
from recbole_umi.model.base import compile_step  # noqa: E402
from recbole_umi.registry import get_model  # noqa: E402
from recbole_umi.settings import window_stride  # noqa: E402


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def joined_training_rows(train_data) -> dict[str, torch.Tensor]:
    """Every training sample with its user features, as field -> tensor (built once)."""
    dataset = train_data._dataset
    return dataset[torch.arange(len(dataset))].interaction


def in_memory_batches(rows: dict[str, torch.Tensor], batch_size: int, generator: torch.Generator):
    """``rows`` cut into shuffled batches, each field indexed with a tensor."""
    order = torch.randperm(len(next(iter(rows.values()))), generator=generator)
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        yield Interaction({field: values[index.to(values.device)] for field, values in rows.items()})


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a GPU's timer would stop before its kernels end)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_only_epoch(model, optimizer, batches, device: torch.device, amp: bool = False,
                     scaler: bool = False) -> tuple[int, float]:
    """One pass over ``batches`` as RecBole's trainer steps: autocast when ``amp``, a gradient
    scaler when ``scaler`` (its ``enable_amp`` and ``enable_scaler``)."""
    model.train()
    grad_scaler = torch.amp.GradScaler(device.type, enabled=scaler)
    synchronize(device)
    samples, began = 0, time.perf_counter()
    for batch in batches:
        optimizer.zero_grad()
        with torch.autocast(device_type=device.type, enabled=amp):
            loss = model.calculate_loss(batch)
        grad_scaler.scale(loss).backward()
        grad_scaler.step(optimizer)
        grad_scaler.update()
        samples += len(batch)
    synchronize(device)
    return samples, time.perf_counter() - began


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="UMI")
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args, rest = parser.parse_known_args(argv)
    settings = {"state": "WARNING", "show_progress": False, **parse_cmd_args(rest)}
    config = Config(args.model, args.dataset, config_dict=settings)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)

    began = time.perf_counter()
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    load_seconds = time.perf_counter() - began

    model = get_model(config["model"])(config, train_data.dataset).to(config["device"])
    compile_step(model, config)  # RecBole's own models, as the plugin's pipeline builds them
    kept = as_configured(config)  # freed memory kept from here on, as recbole_umi.run keeps it before training
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    generator = torch.Generator().manual_seed(config["seed"])
    device = torch.device(config["device"])
    rows = joined_training_rows(train_data)  # outside the timed loops
    on_device = {field: values.to(device) for field, values in rows.items()}
    runs = []
    for repeat in range(args.repeats):
        synchronize(device)
        began = time.perf_counter()
        trainer._train_epoch(train_data, repeat, show_progress=False)
        synchronize(device)
        end_to_end = time.perf_counter() - began
        samples, model_only = model_only_epoch(
            model, trainer.optimizer, in_memory_batches(on_device, config["train_batch_size"], generator), device,
            amp=bool(config["enable_amp"]), scaler=bool(config["enable_scaler"]),
        )
        began = time.perf_counter()
        trainer.evaluate(valid_data, load_best_model=False)
        trainer.evaluate(test_data, load_best_model=False)
        synchronize(device)
        evaluation = time.perf_counter() - began
        runs.append({"epoch_s": end_to_end, "model_only_s": model_only, "eval_s": evaluation, "samples": samples})
        print(f"repeat {repeat}: epoch {end_to_end:.1f}s, model-only {model_only:.1f}s, eval {evaluation:.2f}s", flush=True)

    median = {key: statistics.median(run[key] for run in runs) for key in ("epoch_s", "model_only_s", "eval_s")}
    samples = runs[0]["samples"]
    # the targets an epoch trains: one a row, or under train_sampling: windows one for each of
    # a row's last window_stride history positions (all of them without a stride)
    windows = "train_sampling" in config and config["train_sampling"] == "windows"
    targets = (int(rows[config["ITEM_LIST_LENGTH_FIELD"]].clamp(max=window_stride(config)).sum()) if windows
               else samples)
    figures = {
        "model": config["model"],
        "dataset": config["dataset"],
        "train_batch_size": config["train_batch_size"],
        "n_negatives": config["n_negatives"] if "n_negatives" in config else None,
        "torch_threads": torch.get_num_threads(),
        "train_sampling": config["train_sampling"] if "train_sampling" in config else None,
        "training_samples": samples,
        "training_targets": targets,
        "targets_per_s": round(targets / median["epoch_s"]),
        "load_and_split_s": round(load_seconds, 1),
        "epoch_s": round(median["epoch_s"], 1),
        "samples_per_s": round(samples / median["epoch_s"]),
        "model_only_samples_per_s": round(samples / median["model_only_s"]),
        "pipeline_overhead": round(median["epoch_s"] / median["model_only_s"], 2),
        "eval_s": round(median["eval_s"], 2),
        "peak_rss_mib": round(peak_rss_mib()),
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        "amp": bool(config["enable_amp"]),
        "keep_freed_memory": kept,
        "peak_gpu_mib": round(torch.cuda.max_memory_allocated(device) / 2**20) if device.type == "cuda" else None,
        "repeats": args.repeats,
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return figures


if __name__ == "__main__":
    main()
