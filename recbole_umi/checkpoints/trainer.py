"""RecBole's trainers writing and reading checkpoints of plain data
(:mod:`recbole_umi.checkpoint`): the best epoch and, at the end of every epoch, the
``-last`` file, each with the full training state; resuming from either restores it all, so
an interrupted run ends bit-identically.
"""

from __future__ import annotations

from recbole_umi import compat

compat.apply()  # before anything imports RecBole

import os  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from recbole.trainer import Trainer  # noqa: E402
from recbole.utils import get_trainer as recbole_get_trainer  # noqa: E402
from recbole.utils import set_color  # noqa: E402

from recbole_umi import __version__  # noqa: E402
from recbole_umi.checkpoints.content import (  # noqa: E402
    check_dataset_ids,
    check_interactions,
    dataset_ids,
    encode_other_parameter,
    load_model_state,
    plain_config,
    restore_rng_state,
    rng_state,
)
from recbole_umi.checkpoints.format import (  # noqa: E402
    CheckpointError,
    error_summary,
    last_checkpoint_path,
    read_checkpoint,
    write_checkpoint,
)
from recbole_umi.config import one_process_view  # noqa: E402
from recbole_umi.evaluation import IndexedEvaluation  # noqa: E402
from recbole_umi.optimizer import with_fused_kernel  # noqa: E402
from recbole_umi.plain import plain_data  # noqa: E402
from recbole_umi.provenance import code_key, code_version, describe_code  # noqa: E402

__all__ = ["SafeCheckpointTrainer", "TrainingDivergedError", "safe_trainer", "get_trainer"]


class TrainingDivergedError(ValueError):
    """The training loss stopped being a finite number: the run diverged. ``epoch`` is the
    epoch it happened in (numbered from 0, as in RecBole's log)."""

    def __init__(self, loss: float, epoch: int | None, learning_rate):
        self.epoch = epoch
        super().__init__(
            f"the training loss became {loss} in epoch {epoch}: the run diverged (learning_rate "
            f"{learning_rate}); a smaller learning_rate or a larger softmax_temperature may keep it finite"
        )


class SafeCheckpointTrainer:
    """Mixin for RecBole's ``Trainer`` and its subclasses: checkpoints of plain data
    (:mod:`recbole_umi.checkpoint`).

    - ``_save_checkpoint`` (RecBole calls it for each new best epoch) writes the best epoch to
      ``saved_model_file``; the end of every epoch goes to :func:`last_checkpoint_path` of it.
      Both hold the full training state of their epoch. Nothing is written with
      ``fit(saved=False)``.
    - ``resume_checkpoint`` reads either file weights-only and restores the model, optimizer
      and early-stopping state; ``fit`` then checks the data's ids and restores every random
      state (at its start, so that nothing between the two can draw from them) and continues
      with the epoch after the saved one, writing to the same two files. A ``-last`` file
      older than the best file (the run stopped between the two writes of a new best epoch)
      resumes from the best file, and the ``-last`` of that epoch is written then.
    - ``evaluate(load_best_model=True)`` / ``evaluate(model_file=...)`` read weights-only.
    - ``fit(stop_rule=...)``: after each validation, ``stop_rule(valid_scores)`` (every
      validation score of the run so far, a resumed run's earlier ones included, which the
      checkpoints keep) may end training as early stopping does (``stopped_at_validation``);
      a resumed run the rule had stopped trains no further.
    - A training loss that is not finite (RecBole checks for NaN only) raises
      :class:`TrainingDivergedError`, which ``tune`` records as a failed trial.
    """

    def __init__(self, config, model):
        # RecBole's ensure_dir checks, then creates: runs starting together (processes of one
        # run, compare streams) can both find the folder missing, and the second one fails
        os.makedirs(config["checkpoint_dir"], exist_ok=True)
        with one_process_view(config) as distributed:  # RecBole wraps for GPUs only: wrapped below
            super().__init__(config, model)
        if distributed:
            import torch.distributed as dist
            from torch.nn.parallel import DistributedDataParallel

            on_gpu = config["device"].type == "cuda"
            # the buffers (profile masks, bucket edges) never change: no broadcast at every step
            self.distributed_model = DistributedDataParallel(
                self.model, device_ids=[config["local_rank"]] if on_gpu else None, broadcast_buffers=False
            )
            # one best file for all processes: the first process's name (its start time)
            names = [self.saved_model_file]
            dist.broadcast_object_list(names, src=0)
            self.saved_model_file = names[0]
        self._saving = False  # fit(saved=...): set per fit
        self._loaders: dict = {}
        self._ids = None
        self._interactions = None  # the digest of the data's interactions, set by fit
        self._current_epoch = None  # the epoch whose training started last
        self._last_saved_epoch = None
        self._epoch_valid_result = None  # this epoch's validation, before fit records it as best
        self._resumed = None  # (path, checkpoint) until fit applies its ids and random states
        self._complete_last = False  # resumed from a best file later than the -last: fit writes that -last
        self.epochs_trained = 0  # epochs finished, a resumed run's included
        self.best_epoch = None  # of the best validation so far, numbered from 0 as in RecBole's log
        # every validation score of the run in order; None when a resumed checkpoint did not keep them
        self.valid_scores: list[float] | None = []
        self.stopped_at_validation = None  # the validation after which fit's stop_rule ended training

    def _build_optimizer(self, **kwargs):
        """RecBole's optimizer; Adam and AdamW as torch's fused kernel with ``fused_optimizer``
        (one operation for all parameters a step, called directly: ``recbole_umi.optimizer``;
        the same update to float tolerance)."""
        optimizer = super()._build_optimizer(**kwargs)
        return with_fused_kernel(optimizer) if self.config["fused_optimizer"] else optimizer

    def _is_writer(self) -> bool:
        # as RecBole: in distributed training only the first process writes
        return self.config["single_spec"] or self.config["local_rank"] == 0

    def _checkpoint(self, epoch: int, kind: str, best_valid_result, valid_scores) -> dict:
        return {
            "kind": kind,
            "recbole_umi_version": __version__,
            "torch_version": str(torch.__version__),
            "code": code_version(),  # the code that wrote this epoch (a resumed run: the code that resumed it)
            "model": self.config["model"],
            "dataset": self.config["dataset"],
            "config": plain_config(self.config),
            "ids": self._ids,
            "interactions": self._interactions,
            "epoch": epoch,
            "cur_step": self.cur_step,
            "best_valid_score": float(self.best_valid_score),
            "best_valid_result": plain_data(best_valid_result, where="best_valid_result"),
            "state_dict": self.model.state_dict(),
            "other_parameter": encode_other_parameter(self.model.other_parameter()),
            "optimizer": self.optimizer.state_dict(),
            "rng": rng_state(self._loaders),
            "best_file": Path(self.saved_model_file).name,
            "valid_scores": valid_scores,
            # every validation up to this epoch's (a file without this key may lack a best
            # epoch's own score: resume_checkpoint adds it)
            "valid_scores_complete": True,
        }

    def _save_checkpoint(self, epoch, verbose=True, **kwargs):
        if not self._is_writer():
            return
        path = kwargs.pop("saved_model_file", self.saved_model_file)
        # RecBole records the new best result, and fit this validation's score, only after
        # saving: take this epoch's (its score is the new best score). Without validation
        # (eval_step 0, RecBole saves every epoch) the file holds what was recorded
        scores, best = self.valid_scores, self.best_valid_result
        if self._epoch_valid_result is not None:
            best = self._epoch_valid_result
            scores = None if scores is None else [*scores, float(self.best_valid_score)]
        write_checkpoint(path, self._checkpoint(epoch, "best", best, scores))
        if verbose:
            self.logger.info(set_color("Saving current", "blue") + f": {path}")

    def _save_last(self, epoch) -> None:
        if not self._saving or epoch is None or epoch == self._last_saved_epoch or not self._is_writer():
            return
        write_checkpoint(last_checkpoint_path(self.saved_model_file),
                         self._checkpoint(epoch, "last", self.best_valid_result, self.valid_scores))
        self._last_saved_epoch = epoch

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        self._save_last(self._current_epoch)  # an epoch without validation ends when the next begins
        self._current_epoch = epoch_idx
        self._epoch_valid_result = None
        loss = super()._train_epoch(train_data, epoch_idx, loss_func=loss_func, show_progress=show_progress)
        self.epochs_trained = epoch_idx + 1
        return loss

    def _check_nan(self, loss):
        if not torch.isfinite(loss):
            raise TrainingDivergedError(loss.item(), self._current_epoch, self.config["learning_rate"])

    def _valid_epoch(self, valid_data, show_progress=False):
        valid_score, valid_result = super()._valid_epoch(valid_data, show_progress=show_progress)
        self._epoch_valid_result = valid_result
        return valid_score, valid_result

    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False, callback_fn=None,
            stop_rule=None):
        self._saving = saved
        self._loaders = {"train": train_data, "valid": valid_data}
        self._ids = dataset_ids(train_data._dataset)
        self._interactions = getattr(train_data._dataset, "interactions_digest", None)
        self._current_epoch = self._last_saved_epoch = None
        resumed_finished_run = False
        if self._resumed is not None:
            path, checkpoint = self._resumed
            self._resumed = None
            check_dataset_ids(checkpoint["ids"], train_data._dataset, path)
            check_interactions(checkpoint.get("interactions"), self._interactions, path, refuse=True)
            if checkpoint["rng"] is None:
                self.logger.warning(
                    f"{path} holds no random states: the resumed run will not repeat the uninterrupted one exactly"
                )
            else:
                restore_rng_state(checkpoint["rng"], self._loaders)
            if self._complete_last:
                self._complete_last = False
                self._save_last(checkpoint["epoch"])
            # finished: the stop rule ends it, every epoch done, or early stopping ended the run
            # (its last file is written in the callback, before RecBole's loop breaks). The rule
            # first, as the uninterrupted run asked it after its last validation whatever else
            # ended it: a run it stopped is recorded as stopped (``stopped_at_validation``)
            resumed_finished_run = (self._stops(stop_rule) or self.start_epoch >= self.epochs
                                    or self.cur_step > self.stopping_step)
            if resumed_finished_run:
                self.start_epoch = max(self.start_epoch, self.epochs)  # train no further epoch

        def end_of_epoch(epoch_idx, valid_score):  # RecBole calls it after each validation
            if self.cur_step == 0:  # early stopping took this validation as the best (ties too)
                self.best_epoch = epoch_idx
            if self.valid_scores is not None:
                self.valid_scores.append(float(valid_score))
            self._save_last(epoch_idx)
            if callback_fn is not None:
                callback_fn(epoch_idx, valid_score)
            if self._stops(stop_rule):
                self.logger.info(f"the stop rule ends training after validation {len(self.valid_scores)}")
                raise _StopTraining

        # Resuming a finished run, RecBole would save the current (last) weights over the
        # best file as "epoch -1" before its loop; the best file is already right.
        try:
            result = super().fit(
                train_data, valid_data, verbose=verbose, saved=saved and not resumed_finished_run,
                show_progress=show_progress, callback_fn=end_of_epoch,
            )
        except _StopTraining:  # raised after this epoch's best and last files were written
            result = self.best_valid_score, self.best_valid_result
        self._save_last(self._current_epoch)
        return result

    def _stops(self, stop_rule) -> bool:
        """Whether ``stop_rule`` ends training on the validation scores so far (recorded in
        ``stopped_at_validation``); never without a rule or with an unknown curve."""
        if stop_rule is None or self.valid_scores is None or not stop_rule(list(self.valid_scores)):
            return False
        self.stopped_at_validation = len(self.valid_scores)
        return True

    def resume_checkpoint(self, resume_file):
        path = Path(resume_file)
        checkpoint = read_checkpoint(path)
        if checkpoint["model"].lower() != self.config["model"].lower():
            raise CheckpointError(path, f"holds a {checkpoint['model']} model; this trainer trains {self.config['model']}")
        best_file = path.with_name(checkpoint["best_file"])
        # before the first validation (eval_step > 1) no best file has been written yet
        if not best_file.is_file() and checkpoint["best_valid_result"] is not None:
            raise CheckpointError(path, f"resuming needs the run's best checkpoint {best_file.name} beside it")
        best_file_epoch = None  # read once: a checkpoint holds the weights and optimizer state
        if checkpoint["kind"] == "last" and best_file.is_file():
            best = read_checkpoint(best_file)
            best_file_epoch = best["epoch"]
            # RecBole writes a new best epoch's file before its -last: a run stopped between
            # the two holds an older -last. The best file is the later state; resuming the
            # -last would train that epoch again and keep the best file's weights, which its
            # best score need not describe (a different score on a GPU, fewer epochs asked)
            if best["epoch"] > checkpoint["epoch"]:
                self.logger.info(f"{best_file.name} holds epoch {best['epoch']}, later than {path.name}'s "
                                 f"{checkpoint['epoch']} (the run stopped between the two writes): resuming from it")
                checkpoint = best
                self._complete_last = True  # fit writes the -last file the stop left unwritten
            del best
        load_model_state(self.model, checkpoint, path)
        try:
            self.optimizer.load_state_dict(checkpoint["optimizer"])
        except (ValueError, KeyError) as error:
            raise CheckpointError(path, f"its optimizer state does not fit this optimizer ({error_summary(error)})") from None
        self.start_epoch = self.epochs_trained = checkpoint["epoch"] + 1
        if checkpoint["best_valid_result"] is None:
            self.best_epoch = None
        elif checkpoint["kind"] == "best":
            self.best_epoch = checkpoint["epoch"]
        else:  # the best file's epoch: resuming with other epochs or eval_step keeps it right
            self.best_epoch = best_file_epoch
        self.cur_step = checkpoint["cur_step"]
        self.best_valid_score = checkpoint["best_valid_score"]
        self.best_valid_result = checkpoint["best_valid_result"]
        saved_scores = checkpoint.get("valid_scores")  # None: written before checkpoints kept them
        self.valid_scores = None if saved_scores is None else [float(score) for score in saved_scores]
        if (self.valid_scores is not None and not checkpoint.get("valid_scores_complete")
                and checkpoint["kind"] == "best" and checkpoint["best_valid_result"] is not None):
            # an older best file, written before its own validation's score was recorded:
            # that validation was the best, so its score is the best score
            self.valid_scores.append(float(checkpoint["best_valid_score"]))
        self.saved_model_file = str(best_file)
        self._resumed = (path, checkpoint)
        saved_code = checkpoint.get("code")  # None: not recorded (an older or converted file)
        if saved_code is not None and code_key(saved_code) != code_key(code_version()):
            self.logger.warning(f"resuming {path.name}, written after epoch {checkpoint['epoch']} by other code "
                                f"({describe_code(saved_code)}); the epochs from here on run "
                                f"{describe_code(code_version())}, and the checkpoints written from here on record it")
        self.logger.info(f"Checkpoint loaded. Resume training from epoch {self.start_epoch}")

    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        if eval_data and load_best_model and not self.config["single_spec"]:
            import torch.distributed as dist

            dist.barrier()  # the first process has written the best file before any reads it
        if eval_data and load_best_model:
            path = model_file or self.saved_model_file
            checkpoint = read_checkpoint(path)
            check_dataset_ids(checkpoint["ids"], eval_data._dataset, path)
            load_model_state(self.model, checkpoint, path)
            self.logger.info(f"Loading model structure and parameters from {path}")
        return super().evaluate(eval_data, load_best_model=False, show_progress=show_progress)


class _StopTraining(Exception):
    """Raised in RecBole's fit loop when ``fit``'s stop rule ends training."""


_SAFE_TRAINERS: dict[type, type] = {}


def safe_trainer(trainer_class: type) -> type:
    """``trainer_class`` with :class:`SafeCheckpointTrainer` (and the evaluation through a faiss
    index, :class:`recbole_umi.evaluation.IndexedEvaluation`) mixed in. RecBole's trainers
    that do not derive from ``Trainer`` (XGBoost, LightGBM: their own model files) are
    returned as they are."""
    if issubclass(trainer_class, SafeCheckpointTrainer) or not issubclass(trainer_class, Trainer):
        return trainer_class
    if trainer_class not in _SAFE_TRAINERS:
        _SAFE_TRAINERS[trainer_class] = type(
            trainer_class.__name__, (SafeCheckpointTrainer, IndexedEvaluation, trainer_class),
            {"__module__": __name__, "__doc__": f"RecBole's {trainer_class.__name__} writing safe checkpoints."},
        )
    return _SAFE_TRAINERS[trainer_class]


def get_trainer(model_type, model_name: str) -> type:
    """RecBole's trainer for the model (``recbole.utils.get_trainer``), writing and reading
    checkpoints of plain data (:mod:`recbole_umi.checkpoint`)."""
    return safe_trainer(recbole_get_trainer(model_type, model_name))
