"""Running an experiment: RecBole's pipeline with the plugin's config and registry.

Trainers come from :func:`recbole_umi.checkpoint.get_trainer`: RecBole's, writing checkpoints
that hold plain data only, which ``run(resume=...)`` and ``--evaluate`` read weights-only.
"""

from __future__ import annotations

from recbole_umi import compat

compat.apply()  # before anything imports RecBole

import sys  # noqa: E402
from logging import getLogger  # noqa: E402

import torch  # noqa: E402
from recbole.utils import get_environment, set_color  # noqa: E402

from recbole_umi.allocator import as_configured  # noqa: E402
from recbole_umi.checkpoint import checkpoint_config, evaluate_checkpoint, get_trainer, last_checkpoint_path  # noqa: E402
from recbole_umi.cli import as_interrupt  # noqa: E402
from recbole_umi.command_line import DEFAULT_DATASET, DEFAULT_MODEL, build_arg_parser, console_main  # noqa: E402,F401
from recbole_umi.config import Config, comma_list  # noqa: E402
from recbole_umi.cores import crowded_cores  # noqa: E402
from recbole_umi.data.loaders import history_curve_loaders  # noqa: E402
from recbole_umi.evaluation import PerUserEvaluator, attach_item_categories, evaluated_users, interest_diagnostics  # noqa: E402
from recbole_umi.metrics import metric_column  # noqa: E402
from recbole_umi.pipeline import build  # noqa: E402
from recbole_umi.run_log import init_run_logger  # noqa: E402
from recbole_umi.settings import SettingsError, check_retrieval_evaluation, processes  # noqa: E402

__all__ = ["run", "main", "console_main", "render_result", "build_arg_parser", "DEFAULT_MODEL", "DEFAULT_DATASET"]


def run(
    model: str | None = None,
    dataset: str | None = None,
    config_file_list: list[str] | None = None,
    config_dict: dict | None = None,
    cmd_args: list[str] | None = None,
    saved: bool = True,
    resume: str | None = None,
    stop_rule=None,
) -> dict:
    """Train, validate and test one model on one dataset; plugin and RecBole models alike.

    With ``saved``, the best epoch is saved to ``<checkpoint_dir>/<model>-<time>.pth`` and
    the end of every epoch to ``<model>-<time>-last.pth`` (:mod:`recbole_umi.checkpoint`).
    ``resume``: such a checkpoint (normally the ``-last`` one) to continue from. Its saved
    settings are the config, below ``config_file_list``, ``config_dict`` and ``cmd_args``
    (a larger ``epochs``, say); ``model`` and ``dataset`` may be left out. Training goes on
    with the epoch after the saved one, with its optimizer, early-stopping and random
    states, so that the run ends as the uninterrupted run would have, and keeps writing to
    the checkpoint's two files. ``stop_rule``: called with the run's validation scores so
    far after each validation; True ends training there as early stopping would (a search's
    pruning, :mod:`recbole_umi.experiments.pruning`; one process only).

    Returns:
        ``{"best_valid_score", "valid_score_bigger", "best_valid_result", "test_result"}``
        as RecBole's ``run_recbole`` does; ``epochs``: the epochs trained (a resumed run's
        earlier ones included), ``best_epoch``: the epoch of the best validation, whose
        weights are tested when ``saved`` (numbered from 0 as in RecBole's log; None without
        validation); ``test_per_user``: the test users' original ids (``"user"``) and each
        one's value of every top-k metric (``"recall@50"``, ...), in the same order, for
        paired significance tests; ``interest_diagnostics``: how distinct the interests of
        the test users are (see :func:`recbole_umi.evaluation.interest_diagnostics`; None
        for single-interest and RecBole models); ``eval_protocol``: the protocol the
        metrics were computed under; ``history_curve``: the tested model at each k of
        ``eval_history_curve`` (:func:`history_curve`; None without it); ``unseen``: the
        tested model with seen items left out (``also_exclude_history``; ``{"valid", "test",
        "test_per_user"}``, else None); ``valid_scores``: every validation score in order (None
        for a run resumed from a checkpoint that did not keep them); ``stopped_at_validation``:
        the validation after which ``stop_rule`` ended training (None: it did not).
        With ``world_size`` above 1 (``nproc`` processes here), the run is made by
        :func:`run_processes` and this is its first process's result.
    """
    if resume is None:
        config = Config(model, dataset, config_file_list, config_dict, cmd_args)
    else:
        config = checkpoint_config(resume, model, dataset, config_file_list, config_dict, cmd_args)
    check_retrieval_evaluation(config)  # before anything trains
    if config["single_spec"] and processes(config)[1] > 1:  # world_size > 1: this process starts them
        if resume is not None:
            raise SettingsError("nproc", config["nproc"], "must be 1 with --resume (resuming runs one process)")
        if stop_rule is not None:
            raise SettingsError("nproc", config["nproc"], "must be 1 for a pruned search's trials (one process)")
        return run_processes(config, model, dataset, config_file_list, config_dict, cmd_args, saved)
    init_run_logger(config)  # this run's own log file, also when a process makes several runs
    logger = getLogger()
    logger.info(config)
    dataset, train_data, valid_data, test_data, model_ = build(config)
    logger.info(model_)

    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model_)
    attach_item_categories(trainer.eval_collector, config, dataset)  # before training: a bad field fails now
    if not as_configured(config) and config["keep_freed_memory"]:
        logger.info("keep_freed_memory: this C library is not glibc; memory is handled as it does by default")
    crowded = crowded_cores(torch.get_num_threads())  # many times slower, nothing else would say so
    if crowded is not None:
        logger.warning(crowded)
    if resume is not None:
        trainer.resume_checkpoint(resume)
    last = last_checkpoint_path(trainer.saved_model_file) if saved else None
    if last is not None:
        logger.info(f"checkpoints: the best epoch in {trainer.saved_model_file}, the end of every epoch in {last} "
                    f"(--resume={last} continues the run if it is interrupted)")
    try:
        best_valid_score, best_valid_result = trainer.fit(
            train_data, valid_data, saved=saved, show_progress=config["show_progress"], stop_rule=stop_rule
        )
    except BaseException as error:  # noqa: BLE001 (a stop is told how to continue; the rest raised as is)
        interrupt = as_interrupt(error)
        if interrupt is None:
            raise
        if last is not None and last.exists():
            interrupt.resume_command = f"python -m recbole_umi --resume={last}"  # a wheel has no script
        if interrupt is error:
            raise
        raise interrupt from error
    tested = evaluate_trained(config, dataset, trainer, test_data, saved, logger)
    logger.info("The running environment:\n" + get_environment(config).draw())
    logger.info(set_color("best valid ", "yellow") + f": {best_valid_result}")
    logger.info(set_color("test result", "yellow") + f": {tested['test_result']}")
    return {
        "best_valid_score": best_valid_score,
        "valid_score_bigger": config["valid_metric_bigger"],
        "best_valid_result": best_valid_result,
        "test_result": tested["test_result"],
        "epochs": trainer.epochs_trained,
        "best_epoch": trainer.best_epoch,
        "test_per_user": tested["test_per_user"],
        "interest_diagnostics": tested["interest_diagnostics"],
        "eval_protocol": config["eval_protocol"],
        "history_curve": tested["history_curve"],
        "unseen": tested["unseen"],
        "valid_scores": trainer.valid_scores,
        "stopped_at_validation": trainer.stopped_at_validation,
    }


def evaluate_trained(config, dataset, trainer, test_data, saved: bool, logger) -> dict:
    """The trained model tested (its best epoch's weights when ``saved``), and what else the
    settings ask of it: ``{"test_result", "test_per_user", "history_curve", "unseen",
    "interest_diagnostics"}`` (see :func:`run`)."""
    trainer.evaluator = PerUserEvaluator(trainer.evaluator, config)
    test_result = trainer.evaluate(test_data, load_best_model=saved, show_progress=config["show_progress"])
    test_per_user = per_user_results(test_data, trainer.evaluator)
    curve = history_curve(config, dataset, trainer, logger)
    unseen = None
    if config["also_exclude_history"]:  # the deployment's view beside the paper's
        unseen = evaluate_again(trainer, *history_curve_loaders(config, dataset, config["eval_history_items"], True))
        logger.info(set_color("history left out", "yellow") + f": valid {unseen['valid']}, test {unseen['test']}")
    diagnostics = interest_diagnostics(trainer.model, test_data)  # the model just tested
    if diagnostics:
        logger.info(set_color("interests", "yellow") + f": {diagnostics}")
    return {"test_result": test_result, "test_per_user": test_per_user, "history_curve": curve, "unseen": unseen,
            "interest_diagnostics": diagnostics}


def per_user_results(eval_data, evaluator) -> dict:
    """The users of the evaluation ``evaluator`` (a :class:`PerUserEvaluator`) just made, by
    original id (``"user"``), each one's value of every top-k metric, and under the user-split
    protocol each one's history length (``"history_length"``, before the model's last-T cut)."""
    results = {"user": evaluated_users(eval_data)}
    lengths = getattr(eval_data._dataset, "history_lengths", None)
    if lengths is not None:
        results["history_length"] = lengths.tolist()
    results.update({name: values.tolist() for name, values in evaluator.last.items()})
    return results


def history_curve(config, dataset, trainer, logger) -> dict | None:
    """``{k: {"valid", "test", "test_per_user"}}``: the tested model evaluated again on the
    validation and the test users with each held-out user's first k interactions as its
    history, for every k of ``eval_history_curve`` (None when it is not set)."""
    if not config["eval_history_curve"]:
        return None
    curve = {}
    for k in config["eval_history_curve"]:
        curve[str(k)] = evaluate_again(trainer, *history_curve_loaders(config, dataset, k))
        logger.info(set_color(f"first {k} items", "yellow") + f": valid {curve[str(k)]['valid']}, "
                    f"test {curve[str(k)]['test']}")
    return curve


def evaluate_again(trainer, valid_data, test_data) -> dict:
    """``{"valid", "test", "test_per_user"}`` of the trainer's model (the tested one) on
    other validation and test loaders."""
    valid = trainer.evaluate(valid_data, load_best_model=False, show_progress=False)
    test = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
    return {"valid": {m: float(v) for m, v in valid.items()}, "test": {m: float(v) for m, v in test.items()},
            "test_per_user": per_user_results(test_data, trainer.evaluator)}


def run_processes(config, model, dataset, config_file_list, config_dict, cmd_args, saved) -> dict | None:
    """:func:`run` in ``nproc`` processes of this machine (``torch.multiprocessing.spawn``),
    each the rank ``offset + i`` of ``world_size``: RecBole's distributed training (each
    process trains on its share of the samples, gradients are averaged), gloo on CPUs and
    NCCL on GPUs (``dist_backend``). Every process evaluates every validation and test user
    (the results are the same on each); only the first process logs at ``state`` and writes
    checkpoints. Each process gets ``cpu_count // nproc`` torch threads unless
    ``OMP_NUM_THREADS`` is set. Returns the first process's result (None on a machine
    without rank 0). A process that fails ends the run with its error; one that waits for
    missing peers fails after ``dist_timeout`` seconds."""
    import torch.multiprocessing as mp

    nproc, world_size, offset = processes(config)
    port = config["port"] or _free_port()  # 0: one machine (validated), a port nobody uses
    overrides = {**(config_dict or {}), "port": port, "nproc": nproc}  # nproc also when given as --nproc
    queue = mp.get_context("spawn").SimpleQueue()
    getLogger().info(f"starting {nproc} processes (ranks {offset}-{offset + nproc - 1} of {world_size}), port {port}")
    processes_ = mp.spawn(_process, args=(model, dataset, config_file_list, overrides, cmd_args, saved, queue),
                          nprocs=nproc, join=False)
    join_or_stop(processes_)
    return None if queue.empty() else queue.get()


def join_or_stop(context) -> None:
    """Wait for the processes of ``context`` (``torch.multiprocessing.spawn(join=False)``); a
    stop of this process (Ctrl-C, SIGTERM: a KeyboardInterrupt here) or a failed process ends
    the others before it is raised. A ``kill`` reaches this process only, and at its exit
    Python would otherwise wait for the processes it started, which train on."""
    try:
        while not context.join():
            pass
    except BaseException:
        for process in context.processes:
            if process.is_alive():
                process.terminate()
        for process in context.processes:
            process.join()
        raise


def _process(local_rank, model, dataset, config_file_list, config_dict, cmd_args, saved, queue) -> None:
    import os

    import torch
    import torch.distributed as dist

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // config_dict["nproc"]))
    try:
        result = run(model, dataset, config_file_list, {**config_dict, "local_rank": local_rank}, cmd_args, saved)
        if dist.get_rank() == 0:
            queue.put(result)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def main(argv: list[str] | None = None) -> dict:
    """The command line: ``run_recbole_umi.py [--model=M] [--dataset=D] [--key=value ...]``,
    ``--evaluate=CHECKPOINT`` or ``--resume=CHECKPOINT``."""
    args, rest = build_arg_parser().parse_known_args(sys.argv[1:] if argv is None else argv)
    config_files = comma_list(args.config_files) or None
    if args.evaluate:
        result = evaluate_checkpoint(
            args.evaluate, config_file_list=config_files, cmd_args=rest, model=args.model, dataset=args.dataset
        )
    elif args.resume:
        result = run(args.model, args.dataset, config_files, cmd_args=rest, resume=args.resume)
    else:
        result = run(args.model or DEFAULT_MODEL, args.dataset or DEFAULT_DATASET, config_files, cmd_args=rest)
    if result is None:  # a machine of a distributed run without its first process: it reports
        print("this machine's processes finished; the machine with rank 0 reports the results")
        return result
    print(render_result(result))
    return result


def render_result(result: dict) -> str:
    """A run's best validation and test metrics as a small table: the paper's names under the
    paper's protocol (HitRate@N is RecBole's recall@N there), RecBole's otherwise; the
    epochs, and the interest diagnostics in words."""
    protocol = result.get("eval_protocol")
    tables = {"best validation": result.get("best_valid_result") or {}, "test": result.get("test_result") or {}}
    names = {key: metric_column(key, protocol) for key in tables["test"] or tables["best validation"]}
    width = max(len(label) for label in tables)
    lines = [" " * width + "  " + "  ".join(f"{name:>12}" for name in names.values())]
    for label, values in tables.items():
        lines.append(f"{label:<{width}}  " + "  ".join(
            f"{float(values[key]):>12.4f}" if key in values else f"{'-':>12}" for key in names))
    notes = []
    if protocol == "user_split":
        notes.append("HitRate@N and Precision@N are the paper's metrics (RecBole's recall@N and precision@N)")
    else:
        notes.append("RecBole's metrics under RecBole's protocol (its recall@N is not the paper's metric there)")
    if result.get("epochs") is not None:
        best = "none validated" if result.get("best_epoch") is None else f"the best is epoch {result['best_epoch']}"
        notes.append(f"{result['epochs']} epochs trained, {best} (numbered from 0, as in the log)")
    lines.append("; ".join(notes) + ".")
    diagnostics = result.get("interest_diagnostics")
    if diagnostics:
        shares = diagnostics.get("routing_share")
        parts = [f"mean cosine between a user's interests {diagnostics['interest_cosine']:.2f} (1: duplicates)"]
        if diagnostics.get("routing_overlap") is not None:
            parts.append(f"routing overlap {diagnostics['routing_overlap']:.2f} (1: every interest takes the same items)")
        if shares:
            parts.append("share of history items routed mostly to each interest " + " / ".join(f"{x:.2f}" for x in shares))
        if diagnostics.get("routing_by_position") is not None:
            parts.append(f"routed as the position's random initial logits favour {diagnostics['routing_by_position']:.2f} "
                         "(1: by position, not by item)")
        lines.append("Interests of the test users: " + "; ".join(parts) + ".")
    return "\n".join(lines)
