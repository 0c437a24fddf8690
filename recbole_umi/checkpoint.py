"""Checkpoints that hold only plain data: saving, loading and resuming without running code.

RecBole 1.2.1 pickles its whole ``Config`` object into every checkpoint, and reading such a
file back needs ``torch.load(weights_only=False)``, which runs whatever a pickled
``__reduce__`` in the file says. The checkpoints written here hold tensors and plain Python
values only (dict, list, tuple, str, int, float, bool, None), which torch's weights-only
unpickler reads without running anything; every read in this module is weights-only.

A checkpoint is a ``torch.save``'d dict:

- ``format`` (:data:`FORMAT`), ``version`` (:data:`VERSION`), ``kind`` (``"best"`` or
  ``"last"``), ``model``, ``dataset``, ``recbole_umi_version``, ``torch_version``;
- ``config``: the resolved config as YAML/JSON-safe values (enums by name, no
  ``torch.device``, no keys that only say where the training machine kept things or how it
  ran: ``checkpoint_dir``, ``gpu_id``, ``device``, ...); ``data_path`` is kept, absolute, as
  the default place to find the data again. :func:`checkpoint_config` rebuilds the same
  ``Config`` from it;
- ``ids``: for every token field of the dataset (user, item, profile token fields), its
  tokens in id order, so that the data a checkpoint is used with are checked to be the data
  it was trained on (ids are positions in the embedding tables);
- ``state_dict``, ``other_parameter``: the model, under RecBole's names, so that RecBole's
  own ``Trainer.evaluate(model_file=...)`` reads these files too;
- for resuming: ``epoch``, ``cur_step`` (epochs without improvement), ``best_valid_score``,
  ``best_valid_result``, ``optimizer``, ``rng`` (torch, CUDA, numpy and Python ``random``
  states and every ``torch.Generator`` of the training and validation loaders, e.g.
  ``TrainDataLoader.generator``, ``OnePerUserTrainDataLoader.target_generator``) and
  ``best_file`` (the name of the run's best checkpoint, in the same folder);
- ``digest``: SHA-256 of everything else. torch's zip reader checks no checksum: a flipped
  byte inside a tensor loads silently as another weight (measured: about half of all
  single-byte flips of a small file), so :func:`read_checkpoint` checks this one.

Why ``torch.save`` and not safetensors + a JSON header: the optimizer state and the random
states are nested dicts and lists of tensors and numbers that safetensors cannot hold
without a second, hand-made format beside it, and safetensors is not a dependency; a dict
of tensors and plain values written by ``torch.save`` loads with ``weights_only=True``.

Files: a trainer from :func:`get_trainer` (RecBole's trainer for the model, with
:class:`SafeCheckpointTrainer` mixed in; plugin and RecBole models alike) writes the best
epoch where RecBole does, ``<checkpoint_dir>/<model>-<time>.pth``, and the end of every
epoch to ``<model>-<time>-last.pth`` beside it (:func:`last_checkpoint_path`). Both hold the
full training state of their epoch; resuming from the ``-last`` file continues exactly where
the run stopped and keeps writing the same two files.

Entry points: :func:`load` (config, model in eval mode, the same data split),
:func:`evaluate_checkpoint` (the CLI's ``--evaluate``), ``run(..., resume=PATH)`` (the CLI's
``--resume``), and :func:`convert_trusted_recbole_checkpoint` for RecBole-format files one
trusts. Every problem with a file is a :class:`CheckpointError` naming it.
"""

from __future__ import annotations

from recbole_umi import compat

compat.apply()  # before anything imports RecBole

import copy  # noqa: E402
import hashlib  # noqa: E402
import os  # noqa: E402
import pickle  # noqa: E402
import pickletools  # noqa: E402
import random  # noqa: E402
import warnings  # noqa: E402
import zipfile  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from logging import getLogger  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from recbole.trainer import Trainer  # noqa: E402
from recbole.utils import get_trainer as recbole_get_trainer  # noqa: E402
from recbole.utils import set_color  # noqa: E402

from recbole_umi import __version__  # noqa: E402
from recbole_umi.config import Config, one_process_view  # noqa: E402
from recbole_umi.evaluation import IndexedEvaluation, attach_item_categories, interest_diagnostics  # noqa: E402
from recbole_umi.pipeline import build  # noqa: E402
from recbole_umi.plain import plain_data  # noqa: E402
from recbole_umi.run_log import init_run_logger  # noqa: E402
from recbole_umi.settings import migrate_saved_settings  # noqa: E402

__all__ = [
    "CheckpointError",
    "FORMAT",
    "VERSION",
    "LoadedCheckpoint",
    "SafeCheckpointTrainer",
    "get_trainer",
    "safe_trainer",
    "last_checkpoint_path",
    "write_checkpoint",
    "read_checkpoint",
    "plain_config",
    "checkpoint_config",
    "dataset_ids",
    "check_dataset_ids",
    "rng_state",
    "restore_rng_state",
    "load",
    "evaluate_checkpoint",
    "convert_trusted_recbole_checkpoint",
]

FORMAT = "recbole-umi checkpoint"
VERSION = 1

# Entries every checkpoint of this version has (a damaged dict may lack some).
_REQUIRED = {
    "kind", "model", "dataset", "config", "ids", "epoch", "cur_step", "best_valid_score",
    "best_valid_result", "state_dict", "other_parameter", "optimizer", "rng", "best_file",
}

# Config keys that say where the training machine kept things or how it ran: not saved, a
# rebuilt config takes them from the caller or the defaults. (`local_rank` would even start
# distributed training when fed back.)
_NOT_SAVED = {
    "checkpoint_dir", "gpu_id", "use_gpu", "device", "local_rank", "single_spec", "nproc",
    "world_size", "offset", "ip", "port",
}
# Keys RecBole derives while building a Config (from the model class, the metrics, the eval
# mode): saved for the record, never fed back, since RecBole would misread its own outputs.
_DERIVED = {
    "model", "dataset", "MODEL_TYPE", "MODEL_INPUT_TYPE", "eval_type", "valid_metric_bigger",
    "valid_neg_sample_args", "test_neg_sample_args",
}


class CheckpointError(ValueError):
    """A checkpoint file cannot be used: missing, damaged or truncated, refused (it holds
    pickled objects, e.g. RecBole's own format), of another format or version, or made for
    another model or other data.

    Attributes:
        path: the file.
        problem: what is wrong with it.
    """

    def __init__(self, path, problem: str):
        self.path, self.problem = Path(path), problem
        super().__init__(f"checkpoint {self.path}: {problem}")


def last_checkpoint_path(best_path) -> Path:
    """``<dir>/<model>-<time>-last.pth`` for the best checkpoint ``<dir>/<model>-<time>.pth``."""
    best_path = Path(best_path)
    return best_path.with_name(f"{best_path.stem}-last{best_path.suffix}")


# -- plain data, written and read ----------------------------------------------------------
def _feed(digest, value: Any) -> None:
    """Hash ``value`` unambiguously: type tags, lengths, dtypes and shapes, then the bytes."""
    if isinstance(value, torch.Tensor):
        digest.update(f"T{value.dtype}{tuple(value.shape)};".encode())
        flat = torch.empty(value.numel(), dtype=value.dtype)  # stride 1 whatever the strides read
        flat.copy_(value.reshape(-1))
        digest.update(flat.view(torch.uint8).numpy())
    elif isinstance(value, dict):
        digest.update(f"D{len(value)};".encode())
        for key, item in value.items():
            _feed(digest, key)
            _feed(digest, item)
    elif isinstance(value, (list, tuple)):
        digest.update(f"{'L' if isinstance(value, list) else 'U'}{len(value)};".encode())
        for item in value:
            _feed(digest, item)
    elif isinstance(value, str):
        encoded = value.encode("utf-8", "surrogatepass")
        digest.update(f"S{len(encoded)};".encode() + encoded)
    else:  # int, float, bool, None: repr is exact and tagged by the type's name
        digest.update(f"{type(value).__name__}:{value!r};".encode())


def _digest(content: dict) -> str:
    digest = hashlib.sha256()
    _feed(digest, {key: value for key, value in content.items() if key != "digest"})
    return digest.hexdigest()


def write_checkpoint(path, content: dict) -> Path:
    """Write ``content`` (plain data; ``format``, ``version`` and ``digest`` are added).

    The file is written beside ``path`` and then renamed over it, so that a run killed while
    saving leaves the previous checkpoint, never a truncated one.
    """
    path = Path(path)
    plain = plain_data({"format": FORMAT, "version": VERSION, **content}, tensors=True, where="checkpoint")
    plain["digest"] = _digest(plain)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:  # a file object: the zip's folder is "archive/"
            torch.save(plain, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def read_checkpoint(path) -> dict:
    """The content of the checkpoint ``path``, read with ``weights_only=True`` and checked
    (format, version, digest, entries); :class:`CheckpointError` for anything else."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "no such file")
    try:
        with warnings.catch_warnings():
            # damaged files make torch warn about odd pickle protocols before it fails
            warnings.simplefilter("ignore")
            content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(path, _refusal(path, error)) from None
    except OSError as error:
        raise CheckpointError(path, f"cannot be read: {error.strerror or error}") from None
    except Exception as error:  # noqa: BLE001 -- zip, pickle and decoding errors of a damaged file
        raise CheckpointError(path, f"cannot be read: the file is damaged or truncated ({_summary(error)})") from None
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise CheckpointError(
            path, f"not a recbole-umi checkpoint (no format entry {FORMAT!r}): a bare state dict, "
            "or another program's file"
        )
    if content.get("version") != VERSION:
        raise CheckpointError(path, f"format version {content.get('version')!r}; this recbole-umi reads version {VERSION}")
    try:
        intact = content.get("digest") == _digest(content)
    except Exception:  # noqa: BLE001 -- tensors of impossible layouts in a damaged file
        intact = False
    if not intact:
        raise CheckpointError(path, "damaged: its content does not match the SHA-256 digest written with it")
    missing = sorted(_REQUIRED - content.keys())
    if missing:
        raise CheckpointError(path, f"incomplete: no {', '.join(missing)}")
    return content


def _summary(error: BaseException, n_lines: int = 1) -> str:
    """``Type: first sentence`` of an error (of its first ``n_lines`` lines)."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()][:n_lines]
    text = " ".join(line.split(". ")[0].rstrip(".") for line in lines)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _refusal(path: Path, error: pickle.UnpicklingError) -> str:
    """Why weights-only loading refused ``path``, told from the globals its pickle names."""
    names = _pickled_globals(path)
    if any(name.startswith(("recbole.", "recbole_umi.")) for name in names):
        return (
            "refused: a checkpoint in RecBole's own format, which pickles RecBole's Config object "
            "(so did recbole-umi before its own format); "
            "reading it would run code stored in the file, so it is read weights-only and fails. "
            "If the file comes from a source you trust, convert it once with "
            f"recbole_umi.checkpoint.convert_trusted_recbole_checkpoint({str(path)!r}, 'converted.pth') "
            "(which loads that one file with weights_only=False) and use the converted file"
        )
    foreign = sorted(name for name in names if not name.startswith(("torch.", "collections.")))
    if foreign:
        return (
            f"refused: it holds pickled Python objects ({', '.join(foreign)}) that only running code "
            "from the file could rebuild; recbole-umi checkpoints hold tensors and plain values and "
            "are never read with weights_only=False"
        )
    reason = str(error).split("WeightsUnpickler error:")[-1].strip().splitlines()[0]
    return f"cannot be read: the file is damaged, or holds objects weights-only loading refuses ({reason})"


_STRING_OPCODES = {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"}


def _pickled_globals(path: Path) -> set[str]:
    """``module.name`` of each global the pickle inside the torch zip file ``path`` names.

    Read with :mod:`pickletools`, which decodes opcodes and runs nothing; best effort (for
    error messages only): what a damaged stream hides is left out.
    """
    found: set[str] = set()
    try:
        with zipfile.ZipFile(path) as archive:
            stream = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
        strings: list[str] = []
        memo: dict[int, Any] = {}
        top = None  # the string on top of the stack, if the last push was one
        for opcode, arg, _ in pickletools.genops(stream):
            name = opcode.name
            if name in _STRING_OPCODES:
                top = arg if isinstance(arg, str) else arg.decode("latin-1")
                strings.append(top)
            elif name == "MEMOIZE":
                memo[len(memo)] = top
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[arg] = top
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                top = memo.get(arg)
                if top is not None:
                    strings.append(top)
            elif name == "GLOBAL":
                found.add(arg.replace(" ", "."))
            elif name == "STACK_GLOBAL" and len(strings) >= 2:
                found.add(f"{strings[-2]}.{strings[-1]}")
            elif name != "FRAME":
                top = None
    except Exception:  # noqa: BLE001 -- a damaged stream: report what was found before it
        pass
    return found


# -- what a checkpoint records ---------------------------------------------------------------
def plain_config(config) -> dict:
    """The resolved settings of ``config`` (plugin or RecBole ``Config``) as plain data,
    without the keys of :data:`_NOT_SAVED`; ``data_path`` made absolute."""
    plain = {}
    for key, value in config.final_config_dict.items():
        if key in _NOT_SAVED:
            continue
        try:
            plain[str(key)] = plain_data(value, where=f"config key {key!r}")
        except TypeError as error:
            getLogger().warning(f"checkpoint: {error}; not saved")
    if isinstance(plain.get("data_path"), str):
        plain["data_path"] = os.path.abspath(plain["data_path"])
    return plain


def rebuild_settings(saved_config: dict) -> dict:
    """The saved settings as input for a new Config: without what RecBole derives, and with
    the two values RecBole rewrites while building put back in their input form."""
    # _NOT_SAVED too: a crafted file must not bring back local_rank, paths of pickles, ...
    settings = {
        key: copy.deepcopy(value) for key, value in saved_config.items() if key not in _DERIVED | _NOT_SAVED
    }
    settings = migrate_saved_settings(saved_config.get("model"), settings)  # keys a model reads under a new name
    negatives = settings.get("train_neg_sample_args")
    if isinstance(negatives, dict) and negatives.get("distribution") == "none":
        settings["train_neg_sample_args"] = None  # RecBole's spelling of "no negative sampling"
    if isinstance(settings.get("data_path"), str):  # RecBole appends the dataset's name
        settings["data_path"] = os.path.dirname(settings["data_path"].rstrip("/\\"))
    return settings


class _CheckpointConfig(Config):
    """The plugin's Config with a checkpoint's settings as the lowest user layer: above
    every default, below config files, ``config_dict`` and the command line."""

    def __init__(self, saved_settings: dict, *args, **kwargs):
        self._saved_settings = saved_settings
        super().__init__(*args, **kwargs)

    def _load_config_files(self, file_list):
        return {**copy.deepcopy(self._saved_settings), **super()._load_config_files(file_list)}


def _config_from(checkpoint: dict, path, model=None, dataset=None, config_file_list=None, config_dict=None, cmd_args=None):
    for what, given in (("model", model), ("dataset", dataset)):
        given = getattr(given, "__name__", given)
        if given is not None and given != checkpoint[what]:
            raise CheckpointError(path, f"holds a {what} {checkpoint[what]!r}, not {given!r}")
    return _CheckpointConfig(
        rebuild_settings(checkpoint["config"]), checkpoint["model"], checkpoint["dataset"],
        config_file_list, config_dict, cmd_args,
    )


def checkpoint_config(path, model=None, dataset=None, config_file_list=None, config_dict=None, cmd_args=None):
    """The Config a checkpoint was trained with, rebuilt from its saved settings.

    ``config_file_list``, ``config_dict`` and ``cmd_args`` override those settings, in that
    order (e.g. ``data_path``, or a larger ``epochs`` for resuming); ``model`` and
    ``dataset``, if given, must be the checkpoint's.
    """
    return _config_from(read_checkpoint(path), path, model, dataset, config_file_list, config_dict, cmd_args)


def dataset_ids(dataset) -> dict[str, list[str]]:
    """Every token field's tokens in id order (index 0 is RecBole's ``[PAD]``)."""
    return {str(field): [str(token) for token in tokens] for field, tokens in dataset.field2id_token.items()}


def check_dataset_ids(saved: dict | None, dataset, path) -> None:
    """:class:`CheckpointError` unless ``dataset`` maps every saved token field's tokens to
    the same ids as the data the checkpoint was trained on."""
    if saved is None:
        getLogger().warning(
            f"checkpoint {path} records no id mappings (converted from RecBole's format): "
            "nothing checks that these are the data it was trained on"
        )
        return
    current = dataset_ids(dataset)
    for field, tokens in saved.items():
        here = current.get(field)
        if here == tokens:
            continue
        if here is None:
            detail = f"the field {field!r} is not in them"
        elif len(here) != len(tokens):
            detail = f"{field} has {len(here)} ids here, {len(tokens)} in the checkpoint"
        else:
            index = next(i for i, (a, b) in enumerate(zip(here, tokens)) if a != b)
            detail = f"{field} {index} is the token {here[index]!r} here, {tokens[index]!r} in the checkpoint"
        raise CheckpointError(
            path, f"the data differ from those the model was trained on ({detail}); "
            "point data_path to the dataset it was trained on"
        )


def _loader_generators(loader) -> dict[str, torch.Generator]:
    """Every ``torch.Generator`` a data loader keeps as an attribute (``generator``, which
    shuffles; ``target_generator``, which draws one-per-user targets; ...)."""
    return {name: value for name, value in vars(loader).items() if isinstance(value, torch.Generator)}


def rng_state(loaders: dict) -> dict:
    """Every random state a training epoch draws from: torch (and CUDA), numpy, Python's
    ``random`` and the generators of ``loaders`` (``{"train": loader, ...}``)."""
    _, keys, position, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
        "numpy": {"keys": keys.tolist(), "pos": int(position), "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
        "loaders": {
            name: {attr: generator.get_state() for attr, generator in _loader_generators(loader).items()}
            for name, loader in loaders.items()
            if loader is not None
        },
    }


def restore_rng_state(state: dict, loaders: dict) -> None:
    """Set every random state :func:`rng_state` recorded; generators of ``loaders`` that were
    not recorded (other loader classes) are left as they are, with a warning."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    numpy_state = state["numpy"]
    np.random.set_state(
        ("MT19937", np.array(numpy_state["keys"], dtype=np.uint32), numpy_state["pos"], numpy_state["has_gauss"], numpy_state["gauss"])
    )
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["internal"]), python_state["gauss_next"]))
    for name, loader in loaders.items():
        if loader is None:
            continue
        saved = state["loaders"].get(name, {})
        for attr, generator in _loader_generators(loader).items():
            if attr in saved:
                generator.set_state(saved[attr])
            else:
                getLogger().warning(f"resume: the {name} loader's {attr} was not saved and starts afresh")


def _encode_other_parameter(values: dict | None) -> dict | None:
    """A model's ``other_parameter()`` (RecBole: tensors, numpy arrays, scipy sparse
    matrices) as plain data."""
    if values is None:
        return None
    encoded = {}
    for name, value in values.items():
        if isinstance(value, np.ndarray):
            encoded[name] = {"numpy": torch.from_numpy(np.ascontiguousarray(value))}
        elif hasattr(value, "tocoo") and hasattr(value, "format"):  # a scipy.sparse matrix
            coo = value.tocoo()
            encoded[name] = {
                "scipy_sparse": value.format, "shape": list(coo.shape), "data": torch.from_numpy(coo.data),
                "row": torch.from_numpy(coo.row.astype(np.int64)), "col": torch.from_numpy(coo.col.astype(np.int64)),
            }
        else:
            encoded[name] = plain_data(value, tensors=True, where=f"the model's other parameter {name!r}")
    return encoded


def _decode_other_parameter(encoded: dict | None) -> dict | None:
    if encoded is None:
        return None
    decoded = {}
    for name, value in encoded.items():
        if isinstance(value, dict) and "numpy" in value:
            value = value["numpy"].numpy()
        elif isinstance(value, dict) and "scipy_sparse" in value:
            import scipy.sparse as sparse

            matrix = sparse.coo_matrix((value["data"].numpy(), (value["row"].numpy(), value["col"].numpy())), shape=tuple(value["shape"]))
            value = matrix.asformat(value["scipy_sparse"])
        decoded[name] = value
    return decoded


def _load_model_state(model: torch.nn.Module, checkpoint: dict, path) -> None:
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:
        raise CheckpointError(
            path, f"its weights do not fit the {type(model).__name__} built from its config ({_summary(error, 2)})"
        ) from None
    model.load_other_parameter(_decode_other_parameter(checkpoint["other_parameter"]))


# -- the trainer -----------------------------------------------------------------------------
class SafeCheckpointTrainer:
    """Mixin for RecBole's ``Trainer`` and its subclasses: checkpoints in this module's format.

    - ``_save_checkpoint`` (RecBole calls it for each new best epoch) writes the best epoch to
      ``saved_model_file``; the end of every epoch goes to :func:`last_checkpoint_path` of it.
      Both hold the full training state of their epoch. Nothing is written with
      ``fit(saved=False)``.
    - ``resume_checkpoint`` reads either file weights-only and restores the model, optimizer
      and early-stopping state; ``fit`` then checks the data's ids and restores every random
      state (at its start, so that nothing between the two can draw from them) and continues
      with the epoch after the saved one, writing to the same two files.
    - ``evaluate(load_best_model=True)`` / ``evaluate(model_file=...)`` read weights-only.
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
        self._current_epoch = None  # the epoch whose training started last
        self._last_saved_epoch = None
        self._epoch_valid_result = None  # this epoch's validation, before fit records it as best
        self._resumed = None  # (path, checkpoint) until fit applies its ids and random states
        self.epochs_trained = 0  # epochs finished, a resumed run's included
        self.best_epoch = None  # of the best validation so far, numbered from 0 as in RecBole's log

    def _is_writer(self) -> bool:
        # as RecBole: in distributed training only the first process writes
        return self.config["single_spec"] or self.config["local_rank"] == 0

    def _checkpoint(self, epoch: int, kind: str, best_valid_result) -> dict:
        return {
            "kind": kind,
            "recbole_umi_version": __version__,
            "torch_version": str(torch.__version__),
            "model": self.config["model"],
            "dataset": self.config["dataset"],
            "config": plain_config(self.config),
            "ids": self._ids,
            "epoch": epoch,
            "cur_step": self.cur_step,
            "best_valid_score": float(self.best_valid_score),
            "best_valid_result": plain_data(best_valid_result, where="best_valid_result"),
            "state_dict": self.model.state_dict(),
            "other_parameter": _encode_other_parameter(self.model.other_parameter()),
            "optimizer": self.optimizer.state_dict(),
            "rng": rng_state(self._loaders),
            "best_file": Path(self.saved_model_file).name,
        }

    def _save_checkpoint(self, epoch, verbose=True, **kwargs):
        if not self._is_writer():
            return
        path = kwargs.pop("saved_model_file", self.saved_model_file)
        # RecBole records the new best result only after saving: take this epoch's
        best = self._epoch_valid_result if self._epoch_valid_result is not None else self.best_valid_result
        write_checkpoint(path, self._checkpoint(epoch, "best", best))
        if verbose:
            self.logger.info(set_color("Saving current", "blue") + f": {path}")

    def _save_last(self, epoch) -> None:
        if not self._saving or epoch is None or epoch == self._last_saved_epoch or not self._is_writer():
            return
        write_checkpoint(last_checkpoint_path(self.saved_model_file), self._checkpoint(epoch, "last", self.best_valid_result))
        self._last_saved_epoch = epoch

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        self._save_last(self._current_epoch)  # an epoch without validation ends when the next begins
        self._current_epoch = epoch_idx
        self._epoch_valid_result = None
        loss = super()._train_epoch(train_data, epoch_idx, loss_func=loss_func, show_progress=show_progress)
        self.epochs_trained = epoch_idx + 1
        return loss

    def _valid_epoch(self, valid_data, show_progress=False):
        valid_score, valid_result = super()._valid_epoch(valid_data, show_progress=show_progress)
        self._epoch_valid_result = valid_result
        return valid_score, valid_result

    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False, callback_fn=None):
        self._saving = saved
        self._loaders = {"train": train_data, "valid": valid_data}
        self._ids = dataset_ids(train_data._dataset)
        self._current_epoch = self._last_saved_epoch = None
        resumed_finished_run = False
        if self._resumed is not None:
            path, checkpoint = self._resumed
            self._resumed = None
            check_dataset_ids(checkpoint["ids"], train_data._dataset, path)
            if checkpoint["rng"] is None:
                self.logger.warning(
                    f"{path} holds no random states: the resumed run will not repeat the uninterrupted one exactly"
                )
            else:
                restore_rng_state(checkpoint["rng"], self._loaders)
            # finished: every epoch done, or early stopping ended the run (its last file is
            # written in the callback, before RecBole's loop breaks)
            resumed_finished_run = self.start_epoch >= self.epochs or self.cur_step > self.stopping_step
            if resumed_finished_run:
                self.start_epoch = max(self.start_epoch, self.epochs)  # train no further epoch

        def end_of_epoch(epoch_idx, valid_score):  # RecBole calls it after each validation
            if self.cur_step == 0:  # early stopping took this validation as the best (ties too)
                self.best_epoch = epoch_idx
            self._save_last(epoch_idx)
            if callback_fn is not None:
                callback_fn(epoch_idx, valid_score)

        # Resuming a finished run, RecBole would save the current (last) weights over the
        # best file as "epoch -1" before its loop; the best file is already right.
        result = super().fit(
            train_data, valid_data, verbose=verbose, saved=saved and not resumed_finished_run,
            show_progress=show_progress, callback_fn=end_of_epoch,
        )
        self._save_last(self._current_epoch)
        return result

    def resume_checkpoint(self, resume_file):
        path = Path(resume_file)
        checkpoint = read_checkpoint(path)
        if checkpoint["model"].lower() != self.config["model"].lower():
            raise CheckpointError(path, f"holds a {checkpoint['model']} model; this trainer trains {self.config['model']}")
        best_file = path.with_name(checkpoint["best_file"])
        # before the first validation (eval_step > 1) no best file has been written yet
        if not best_file.is_file() and checkpoint["best_valid_result"] is not None:
            raise CheckpointError(path, f"resuming needs the run's best checkpoint {best_file.name} beside it")
        _load_model_state(self.model, checkpoint, path)
        try:
            self.optimizer.load_state_dict(checkpoint["optimizer"])
        except (ValueError, KeyError) as error:
            raise CheckpointError(path, f"its optimizer state does not fit this optimizer ({_summary(error)})") from None
        self.start_epoch = self.epochs_trained = checkpoint["epoch"] + 1
        if checkpoint["best_valid_result"] is None:
            self.best_epoch = None
        elif checkpoint["kind"] == "best":
            self.best_epoch = checkpoint["epoch"]
        else:  # the best file's epoch: resuming with other epochs or eval_step keeps it right
            self.best_epoch = read_checkpoint(best_file)["epoch"]
        self.cur_step = checkpoint["cur_step"]
        self.best_valid_score = checkpoint["best_valid_score"]
        self.best_valid_result = checkpoint["best_valid_result"]
        self.saved_model_file = str(best_file)
        self._resumed = (path, checkpoint)
        self.logger.info(f"Checkpoint loaded. Resume training from epoch {self.start_epoch}")

    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        if eval_data and load_best_model and not self.config["single_spec"]:
            import torch.distributed as dist

            dist.barrier()  # the first process has written the best file before any reads it
        if eval_data and load_best_model:
            path = model_file or self.saved_model_file
            checkpoint = read_checkpoint(path)
            check_dataset_ids(checkpoint["ids"], eval_data._dataset, path)
            _load_model_state(self.model, checkpoint, path)
            self.logger.info(f"Loading model structure and parameters from {path}")
        return super().evaluate(eval_data, load_best_model=False, show_progress=show_progress)


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
    checkpoints in this module's format."""
    return safe_trainer(recbole_get_trainer(model_type, model_name))


# -- using a checkpoint ----------------------------------------------------------------------
@dataclass
class LoadedCheckpoint:
    """What :func:`load` returns.

    Attributes:
        config: the Config the model was trained with (with the caller's overrides).
        model: the model with the saved weights, in eval mode, on ``config["device"]``.
        dataset: the dataset, with the ids the model was trained on (checked).
        train_data, valid_data, test_data: the loaders of the same split as in training.
        info: ``path``, ``kind``, ``epoch``, ``best_valid_score``, ``best_valid_result``.
    """

    config: Any
    model: torch.nn.Module
    dataset: Any
    train_data: Any
    valid_data: Any
    test_data: Any
    info: dict


def load(path, data_path=None, config_file_list=None, config_dict=None, cmd_args=None, model=None, dataset=None) -> LoadedCheckpoint:
    """A saved model ready to score users, rebuilt from its checkpoint without running code.

    The config is rebuilt from the saved settings, the dataset from its files (its ids are
    checked against the saved ones: :class:`CheckpointError` if the data differ) and split as
    in training, the model built from the config and given the saved weights. Seeds are set
    as ``run`` sets them, so the process's random state changes.

    Args:
        path: a checkpoint written by a plugin trainer (best or ``-last``).
        data_path: the folder holding ``<dataset>/``, as ``--data_path`` in a run; default:
            where the data were in training.
        config_file_list, config_dict, cmd_args: override saved settings (evaluation
            settings such as ``topk``; settings that change the model make loading fail).
        model, dataset: if given, must be the checkpoint's.

    Example::

        loaded = recbole_umi.load("saved/UMI-Jan-01-2025_00-00-00.pth")
        interests = loaded.model(next(iter(loaded.test_data))[0])     # B x K x d
    """
    path = Path(path)
    checkpoint = read_checkpoint(path)
    overrides = dict(config_dict or {})
    if data_path is not None:
        overrides["data_path"] = str(data_path)
    config = _config_from(checkpoint, path, model, dataset, config_file_list, overrides, cmd_args)
    # as run builds: the same split and loaders
    dataset_, train_data, valid_data, test_data, model_ = build(
        config, check_dataset=lambda dataset: check_dataset_ids(checkpoint["ids"], dataset, path)
    )
    _load_model_state(model_, checkpoint, path)
    model_.eval()
    info = {"path": str(path), **{key: checkpoint[key] for key in ("kind", "epoch", "best_valid_score", "best_valid_result")}}
    return LoadedCheckpoint(config, model_, dataset_, train_data, valid_data, test_data, info)


def evaluate_checkpoint(path, data_path=None, config_file_list=None, config_dict=None, cmd_args=None, model=None, dataset=None) -> dict:
    """Test a saved model as a run tests its best epoch (the CLI's ``--evaluate``).

    Arguments as :func:`load`. Returns ``{"best_valid_result", "test_result",
    "interest_diagnostics", "checkpoint", "eval_protocol"}``: the validation result recorded
    in the checkpoint, the test result computed now by RecBole's evaluator, the interest
    diagnostics on the test users (:func:`recbole_umi.evaluation.interest_diagnostics`, as a
    run records them), ``LoadedCheckpoint.info`` and the protocol.
    """
    loaded = load(path, data_path, config_file_list, config_dict, cmd_args, model, dataset)
    config = loaded.config
    init_run_logger(config)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, loaded.model)
    attach_item_categories(trainer.eval_collector, config, loaded.dataset)
    trainer.eval_collector.data_collect(loaded.train_data)  # as fit does, for popularity-based metrics
    test_result = trainer.evaluate(loaded.test_data, load_best_model=False, show_progress=config["show_progress"])
    getLogger().info(set_color("test result", "yellow") + f": {test_result}")
    return {
        "best_valid_result": loaded.info["best_valid_result"],
        "test_result": test_result,
        "interest_diagnostics": interest_diagnostics(loaded.model, loaded.test_data),
        "checkpoint": loaded.info,
        "eval_protocol": config["eval_protocol"],
    }


def _migrate_state_dict(state_dict: dict, config) -> dict:
    """A state dict written by recbole-umi before its renovation, in today's names: the
    evaluation routing logits moved into ``routing_logits`` (UMI, MIND), and the ablations
    no longer build the network they switch off (UGANet without DAR, the field-relevance
    MLP without IR). Other state dicts pass unchanged."""
    migrated = {}
    for key, value in state_dict.items():
        if key == "eval_routing_logits":
            key = "routing_logits.eval_logits"
        switched_off = (key.startswith("uganet.") and config["use_dar"] is False) or (
            key.startswith("field_relevance.") and config["use_ir"] is False
        )
        if not switched_off:
            migrated[key] = value
    return migrated


def convert_trusted_recbole_checkpoint(src, dst) -> Path:
    """Rewrite a checkpoint in RecBole's own format (a pickled Config) as a safe one.

    TRUSTS ``src``: it is read with ``torch.load(weights_only=False)``, which runs any code the
    file was made to run. Use it only on a file you wrote yourself or got from a source you
    trust; it is the one place recbole-umi reads a file that way, and only the file named
    here. ``dst`` then holds plain data only and loads anywhere without trust.

    RecBole's checkpoints record neither the dataset's ids (so :func:`load` cannot check the
    data, and says so) nor random states or the best validation result (so resuming from
    ``dst`` continues training but does not repeat an uninterrupted run exactly).
    """
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise CheckpointError(src, "no such file")
    old = torch.load(src, map_location="cpu", weights_only=False)  # trusted: see the docstring
    config = old["config"]
    write_checkpoint(dst, {
        "kind": "best",
        "recbole_umi_version": __version__,
        "torch_version": str(torch.__version__),
        "model": config["model"],
        "dataset": config["dataset"],
        "config": plain_config(config),
        "ids": None,
        "epoch": old["epoch"],
        "cur_step": old["cur_step"],
        "best_valid_score": float(old["best_valid_score"]),
        "best_valid_result": None,
        "state_dict": _migrate_state_dict(old["state_dict"], config),
        "other_parameter": _encode_other_parameter(old.get("other_parameter")),
        "optimizer": old["optimizer"],
        "rng": None,
        "best_file": dst.name,
        "converted_from": str(src),
    })
    return dst
