"""Where a training step's time goes: forward, loss, backward, optimizer, and the top ops.

Builds the model on the dataset's training split (the dataset config's protocol), builds
20 batches with their user features once, and then times training steps on them alone, so
that only the model's own work is measured (bench_train.py measures the data pipeline
around it). Prints the median milliseconds per step and its split, and torch.profiler's
table of the ops with the most self CPU time. Run it with the machine otherwise idle.

    python bench/profile_step.py --model=UMI --dataset=ml-1m --data_path=../shared/data \
        --train_batch_size=1024 --n_negatives=5 [--config_files=results/tuning/ml-1m/UMI/best.yaml]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recbole_umi import compat  # noqa: E402

compat.apply()  # before anything imports RecBole
from recbole.utils import init_seed  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from bench.compile_step import trainer_adam  # noqa: E402
from recbole_umi.allocator import as_configured  # noqa: E402
from recbole_umi.config import Config, comma_list, parse_cmd_args  # noqa: E402
from recbole_umi.data import create_dataset, data_preparation  # noqa: E402
from recbole_umi.registry import get_model  # noqa: E402


def timed_step(model, optimizer, batch) -> dict[str, float]:
    """One training step, split into its phases (seconds)."""
    marks = [time.perf_counter()]
    optimizer.zero_grad()
    interests = model.forward(batch)
    marks.append(time.perf_counter())
    loss = model.loss_fct(interests, batch[model.POS_ITEM_ID], model.item_embeddings)  # the candidates' vectors on demand
    marks.append(time.perf_counter())
    loss.backward()
    marks.append(time.perf_counter())
    optimizer.step()
    marks.append(time.perf_counter())
    phases = ("forward", "loss", "backward", "optimizer")
    return {phase: marks[i + 1] - marks[i] for i, phase in enumerate(phases)}


def trainer_step(model, optimizer, batch) -> float:
    """Seconds of one training step as the trainer takes it: ``calculate_loss`` (compiled
    with ``compile_step``), backward, the optimizer's step."""
    started = time.perf_counter()
    optimizer.zero_grad()
    model.calculate_loss(batch).backward()
    optimizer.step()
    return time.perf_counter() - started


def alternated_steps(model, optimizer, batches, owner, ways: dict[str, dict], rounds: int, step=trainer_step,
                     warmups: int = 2) -> dict[str, list[float]]:
    """Seconds of each training step (``step(model, optimizer, batch)``, returning them) with
    ``owner``'s attributes set as each way says (``{label: {attribute: value}}``), in turn:
    ``warmups`` steps each on the first batch (compiling, once per way, where the step
    compiles), then ``rounds`` rounds of every batch under each way. The attributes are
    restored afterwards, also on failure."""
    original = {name: getattr(owner, name) for settings in ways.values() for name in settings}
    times: dict[str, list[float]] = {way: [] for way in ways}

    def take(settings):
        for name, value in settings.items():
            setattr(owner, name, value)

    try:
        for settings in ways.values():
            take(settings)
            for _ in range(warmups):
                step(model, optimizer, batches[0])
        for _ in range(rounds):
            for way, settings in ways.items():
                take(settings)
                times[way] += [step(model, optimizer, batch) for batch in batches]
    finally:
        take(original)
    return times


def alternated_medians(model, optimizer, batches, owner, name: str, ways: dict, rounds: int) -> dict[str, float]:
    """Median milliseconds of a training step (:func:`timed_step`) with ``owner.<name>`` set to
    each function of ``ways`` (``{label: function}``) in turn: one warm-up step each, then
    ``rounds`` rounds of every batch under each way (:func:`alternated_steps`)."""
    times = alternated_steps(model, optimizer, batches, owner, {way: {name: f} for way, f in ways.items()}, rounds,
                             step=lambda *step_args: sum(timed_step(*step_args).values()), warmups=1)
    return {way: round(1e3 * statistics.median(t), 1) for way, t in times.items()}


def build(model_name: str, dataset_name: str, settings: dict, n_batches: int = 20):
    """Config, model (in training mode), Adam and ``n_batches`` training batches with their
    user features joined, drawn once from the training split (seeded). ``settings`` may
    hold ``config_files``: comma-separated YAML files, as ``run_recbole_umi.py`` takes them."""
    settings = {"state": "WARNING", "show_progress": False, **settings}
    config_files = comma_list(settings.pop("config_files", None)) or None
    config = Config(model_name, dataset_name, config_files, config_dict=settings)
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, _, _ = data_preparation(config, dataset)
    model = get_model(config["model"])(config, train_data.dataset)
    model.train()
    as_configured(config)  # freed memory kept from here on, as recbole_umi.run keeps it before training
    # as the plugin's trainer builds it (fused_optimizer, on by default)
    optimizer = trainer_adam(model, config)
    training = train_data._dataset
    size = config["train_batch_size"]
    rows = torch.randperm(len(training), generator=torch.Generator().manual_seed(0))[: size * n_batches]
    batches = [training[rows[i * size : (i + 1) * size]] for i in range(n_batches)]  # user features joined
    return config, model, optimizer, batches


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="UMI")
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--steps", type=int, default=100, help="timed steps (after 10 warm-up steps)")
    parser.add_argument("--top", type=int, default=15, help="rows of the profiler table")
    args, rest = parser.parse_known_args(argv)
    config, model, optimizer, batches = build(args.model, args.dataset, parse_cmd_args(rest))
    size, n_batches = config["train_batch_size"], len(batches)
    for i in range(10):
        timed_step(model, optimizer, batches[i % n_batches])
    steps = [timed_step(model, optimizer, batches[i % n_batches]) for i in range(args.steps)]
    total = statistics.median(sum(step.values()) for step in steps)
    split = ", ".join(f"{phase} {1e3 * statistics.median(s[phase] for s in steps):.1f}" for phase in steps[0])
    print(f"{config['model']}, batch {size}, {torch.get_num_threads()} threads: "
          f"{1e3 * total:.1f} ms per step (median of {args.steps}; {split} ms)")

    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for i in range(30):
            timed_step(model, optimizer, batches[i % n_batches])
    print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top))


if __name__ == "__main__":
    main()
