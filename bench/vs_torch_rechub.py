"""Our MIND against torch-rechub's MIND, the model-only training step side by side in one
process (the speed issue's "MIND at batch 128 on 1 thread: at least 3x torch-rechub's rows
per second"). Both read the same ml-1m training batches of our protocol: the history (T), the
target, the profile fields (gender, age, occupation), and 5 uniform negatives drawn inside
the step; each step is forward, loss, backward and Adam. Ours is timed eager and with
``compile_step``, with Adam as the plugin's trainer builds it (``fused_optimizer``, on by
default: torch's fused kernel by ``recbole_umi.optimizer``'s direct step), and compiled with
torch's own fused Adam step for the record; torch-rechub's as its ``MatchTrainer`` runs it in list-wise mode (softmax
cross-entropy over the target and the negatives), without its data pipeline, with its
trainer's plain Adam and, for the record, with the fused one. The five alternate in rounds, so a change in the machine's load touches all of them; medians
over the rounds' steps. Run it with the machine otherwise idle:

    pip install --no-deps torch-rechub==0.9.0   # its needs (numpy, pandas, scikit-learn, tqdm) are ours
    OMP_NUM_THREADS=1 python bench/vs_torch_rechub.py --dataset=ml-1m --data_path=../shared/data \
        [--train_batch_size=128] [--rounds=5] [--steps=100] [--json=FILE]

The models are not the same network: torch-rechub's MIND maps [profile ; capsule] to an
interest with one linear map and normalises the vectors, ours has an MLP of
``mlp_hidden_size`` and the plugin's loss (temperature, label-aware attention); both route
with 3 iterations, d = 32, K = 3, profile fields of size 8. Writes the rows per second of
each and the ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recbole_umi import compat  # noqa: E402

compat.apply()  # before anything imports RecBole
from recbole.utils import init_seed  # noqa: E402

from bench.compile_step import trainer_adam  # noqa: E402
from recbole_umi.config import Config, parse_cmd_args  # noqa: E402
from recbole_umi.data import create_dataset, data_preparation  # noqa: E402
from recbole_umi.registry import get_model  # noqa: E402


def rechub_mind(config, dataset, fields: list[str]):
    """torch-rechub's MIND at our settings: ``fields`` as its user features."""
    from torch_rechub.basic.features import SequenceFeature, SparseFeature
    from torch_rechub.models.matching import MIND

    d, n_items = config["embedding_size"], dataset.item_num
    user = [SparseFeature(f, vocab_size=dataset.num(f), embed_dim=config["profile_embedding_size"]) for f in fields]
    item = [SparseFeature("item", vocab_size=n_items, embed_dim=d)]
    history = [SequenceFeature("history", vocab_size=n_items, embed_dim=d, pooling="concat", shared_with="item")]
    negatives = [SequenceFeature("negatives", vocab_size=n_items, embed_dim=d, pooling="concat", shared_with="item")]
    return MIND(user, history, item, negatives, max_length=config["MAX_ITEM_LIST_LENGTH"],
                interest_num=config["n_interests"])


def timed_steps(step, batches) -> list[float]:
    times = []
    for batch in batches:
        began = time.perf_counter()
        step(batch)
        times.append(time.perf_counter() - began)
    return times


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--json", default=None)
    args, rest = parser.parse_known_args(argv)
    settings = {"state": "ERROR", "show_progress": False, "train_batch_size": 128, "n_negatives": 5,
                "negative_sampler": "uniform", **parse_cmd_args(rest)}
    config = Config("MIND", args.dataset, config_dict={**settings, "compile_step": False})
    init_seed(config["seed"], config["reproducibility"])
    train_data, _, _ = data_preparation(config, create_dataset(config))
    size = config["train_batch_size"]
    batches = []
    for batch in train_data:  # full batches only
        if len(batch) == size:
            batches.append(batch)
        if len(batches) == args.steps + 2:
            break
    dataset = train_data.dataset
    fields = list(config["profile_fields"])

    steps = {}
    # eager and compiled, each with Adam as the plugin's trainer builds it (fused_optimizer, on
    # by default: recbole_umi.optimizer's direct step); the compiled model also with torch's
    # own fused Adam step (a second optimizer of the same parameters, so that only the
    # optimizer differs), for the record
    for compiled in (False, True):
        model_config = Config("MIND", args.dataset, config_dict={**settings, "compile_step": compiled})
        init_seed(config["seed"], config["reproducibility"])
        model = get_model("MIND")(model_config, dataset).train()
        optimizers = {"": trainer_adam(model, model_config)}
        if compiled:
            optimizers[", torch's Adam step"] = torch.optim.Adam(model.parameters(), lr=config["learning_rate"],
                                                                 fused=model_config["fused_optimizer"] or None)
        for suffix, optimizer in optimizers.items():
            def ours(batch, model=model, optimizer=optimizer):
                optimizer.zero_grad()
                model.calculate_loss(batch).backward()
                optimizer.step()
            steps[("ours, compiled" if compiled else "ours, eager") + suffix] = ours

    loss_fn = torch.nn.CrossEntropyLoss()
    n_negatives = config["n_negatives"]
    for fused in (None, True):  # its trainer's Adam, and (for the record) the fused one ours uses
        init_seed(config["seed"], config["reproducibility"])
        theirs_model = rechub_mind(config, dataset, fields).train()
        theirs_optimizer = torch.optim.Adam(theirs_model.parameters(), lr=config["learning_rate"], fused=fused)

        def theirs(batch, theirs_model=theirs_model, theirs_optimizer=theirs_optimizer):
            x = {f: batch[f] for f in fields}
            x["history"], x["item"] = batch[config["ITEM_ID_FIELD"] + config["LIST_SUFFIX"]], batch[config["ITEM_ID_FIELD"]]
            x["negatives"] = torch.randint(1, dataset.item_num, (len(batch), n_negatives))
            theirs_optimizer.zero_grad()
            scores = theirs_model(x)  # B x (1 + negatives), the target first
            loss_fn(scores, torch.zeros(len(batch), dtype=torch.long)).backward()
            theirs_optimizer.step()
        steps["torch-rechub, fused Adam" if fused else "torch-rechub"] = theirs

    for step in steps.values():  # warm-up: the compile, the first allocations
        for batch in batches[:2]:
            step(batch)
    times = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            times[name] += timed_steps(step, batches[2:])
    figures = {"train_batch_size": size, "torch_threads": torch.get_num_threads(), "steps_per_round": args.steps,
               "rounds": args.rounds}
    for name, seconds in times.items():
        figures[f"{name}: ms a step"] = round(1000 * statistics.median(seconds), 3)
        figures[f"{name}: rows/s"] = round(size / statistics.median(seconds))
    for name in ("ours, eager", "ours, compiled", "ours, compiled, torch's Adam step"):
        for other in ("torch-rechub", "torch-rechub, fused Adam"):
            figures[f"{name} / {other}"] = round(figures[f"{name}: rows/s"] / figures[f"{other}: rows/s"], 2)
    figures["ours, compiled / ours, compiled, torch's Adam step"] = round(
        figures["ours, compiled: rows/s"] / figures["ours, compiled, torch's Adam step: rows/s"], 3)
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return figures


if __name__ == "__main__":
    main()
