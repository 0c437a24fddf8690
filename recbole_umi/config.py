"""Config layering for the plugin.

Priority, lowest first:

1. RecBole's defaults (``overall.yaml``, its model and dataset YAML, its quick-start files);
2. ``properties/overall.yaml`` (plugin-wide defaults: the evaluation protocol), then
   ``properties/model/<class>.yaml`` for each class of the model, base classes first
   (``MatchingRecommender.yaml`` holds what all plugin models share);
3. ``dataset_configs/<dataset>.yaml`` (this plugin's per-dataset settings);
4. the user's ``config_file_list`` (``--config_files``);
5. ``config_dict``;
6. the command line (``--key=value``), passed explicitly as ``cmd_args``: a library call
   never reads ``sys.argv`` (pytest's or a notebook's arguments are not config).

Layers 2-3 are overlaid on RecBole's internal layer, so everything the user passes keeps
beating them, exactly as it beats RecBole's own defaults. A dataset config may start from a
shared file (``base_config: _movielens.yaml``, loaded first, from the same folder).

Every recbole-umi setting of the final config is validated (:mod:`recbole_umi.settings`)
before anything else happens: a bad value stops a run before any data is loaded. So does a
key the user gives that nothing knows but that is close to a known key (``n_interest``):
see :func:`known_keys`.
"""

from __future__ import annotations

from recbole_umi import compat

compat.apply()  # before anything imports RecBole

import contextlib  # noqa: E402
from logging import getLogger  # noqa: E402
import functools  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
from pathlib import Path  # noqa: E402

import recbole  # noqa: E402
import yaml  # noqa: E402
from recbole.config import Config as RecBoleConfig  # noqa: E402
from recbole.utils import argument_list  # noqa: E402

from recbole_umi import evaluation, registry, settings  # noqa: E402
from recbole_umi.item_file import header_field_names  # noqa: E402
from recbole_umi.model import MatchingRecommender  # noqa: E402
from recbole_umi.resources import resource_dir  # noqa: E402

evaluation.register_metrics()  # the plugin's metrics (CategoryCoverage) known to RecBole's Config

__all__ = [
    "Config",
    "DistributedError",
    "comma_list",
    "one_process_view",
    "resource_dir",
    "model_properties_file",
    "dataset_config_file",
    "dataset_config_layers",
    "parse_cmd_args",
    "known_keys",
]

def model_properties_file(model: str) -> Path:
    return resource_dir("properties") / "model" / f"{model}.yaml"


def dataset_config_file(dataset: str) -> Path:
    return resource_dir("dataset_configs") / f"{dataset}.yaml"


# The key by which a dataset config names the shared file it starts from.
BASE_CONFIG_KEY = "base_config"


def dataset_config_layers(dataset: str) -> list[Path]:
    """``dataset_configs/<dataset>.yaml`` preceded by the files it names, recursively, as
    ``base_config`` (lowest priority first); empty if the dataset has no config here."""
    layers: list[Path] = []
    path = dataset_config_file(dataset)
    while path.is_file():
        if path in layers:
            raise ValueError(f"{path} is its own {BASE_CONFIG_KEY}, through {[p.name for p in layers]}")
        layers.insert(0, path)
        base = (yaml.safe_load(path.read_text()) or {}).get(BASE_CONFIG_KEY)
        if base is None:
            break
        path = path.parent / base
        if not path.is_file():
            raise FileNotFoundError(f"{layers[0]} names {BASE_CONFIG_KEY}: {base}, which is not in {path.parent}")
    return layers


def comma_list(text: str | None, kind=str, name: str | None = None) -> list:
    """The parts of a comma-separated command-line value, each through ``kind``, empty parts
    skipped (``"a,b,"`` -> ``["a", "b"]``); ``[]`` for None or an empty value. Spaces separate
    too (RecBole's own ``--config_files="a.yaml b.yaml"``): no part holds one. A part ``kind``
    refuses is a ``ValueError`` naming the argument ``--name`` and the part."""
    values = []
    for part in re.split(r"[,\s]+", text or ""):
        if not part:
            continue
        try:
            values.append(kind(part))
        except ValueError:
            what = {int: "integers"}.get(kind, "values")
            raise ValueError(f"--{name or 'value'} must be comma-separated {what}: {part!r} is not one") from None
    return values


@contextlib.contextmanager
def one_process_view(config):
    """``config`` seen as a single-process run while the block runs, for RecBole code that
    would otherwise shard the work (its samplers) or wrap the model for GPUs (its trainer);
    in a distributed run the caller then does its own share."""
    distributed = not config["single_spec"]
    config["single_spec"] = True
    try:
        yield distributed
    finally:
        config["single_spec"] = not distributed


def parse_cmd_args(cmd_args: list[str]) -> dict[str, str]:
    """``["--lr=0.1", ...]`` -> ``{"lr": "0.1"}``; anything else is an error."""
    parsed: dict[str, str] = {}
    for arg in cmd_args:
        name, sep, value = arg[2:].partition("=") if arg.startswith("--") else ("", "", "")
        if not name or not sep:
            raise ValueError(f"command-line argument {arg!r} is not of the form --key=value")
        if name in parsed and parsed[name] != value:
            raise ValueError(f"--{name} is given twice with different values")
        parsed[name] = value
    return parsed


class DistributedError(RuntimeError):
    """A process of a distributed run could not reach its peers in time."""


class Config(RecBoleConfig):
    """RecBole's ``Config`` that knows the plugin's models and YAML defaults.

    Args:
        model, dataset, config_file_list, config_dict: as in RecBole's ``Config``.
        cmd_args: ``--key=value`` strings with the highest priority (the CLI's argv).
    """

    def __init__(self, model=None, dataset=None, config_file_list=None, config_dict=None, cmd_args=None):
        self._cmd_args = list(cmd_args or [])
        super().__init__(model, dataset, config_file_list, config_dict)
        settings.check_known_keys(self.external_config_dict, known_keys(self))
        settings.check_nested_keys(self._given_settings())
        restrictions = {}
        for cls in reversed(self.model_class.__mro__):  # a subclass's narrowing wins
            restrictions.update(getattr(cls, "setting_restrictions", {}))
        plugin_model = issubclass(self.model_class, MatchingRecommender)
        settings.validate(self, plugin_model, restrictions)
        if plugin_model:
            self.model_class.check_settings(self)
        _check_empty_histories(self)
        _check_windows(self)
        _warn_more_interests_than_items(self)

    def _given_settings(self) -> dict:
        """The settings the user gave (files, ``config_dict``, command line), merged."""
        return self.external_config_dict

    def _init_device(self):
        """RecBole's device setup for one process; for a process of a distributed run (one
        that :func:`recbole_umi.quick_start.run` started, with its ``local_rank``) the
        process group: ``dist_backend`` (auto: NCCL with GPUs, else gloo, which RecBole's
        NCCL-only setup lacks), failing after ``dist_timeout`` seconds without its peers."""
        final = self.final_config_dict
        if "local_rank" not in final:
            super()._init_device()
            if final["device"].type == "cpu":  # the config's dump says what runs: no GPU
                final["use_gpu"] = False
            return
        import datetime

        import torch
        import torch.distributed as dist

        final["gpu_id"] = ",".join(map(str, final["gpu_id"])) if isinstance(final["gpu_id"], tuple) else str(final["gpu_id"])
        os.environ["CUDA_VISIBLE_DEVICES"] = final["gpu_id"]
        use_cuda = bool(final["use_gpu"]) and torch.cuda.is_available()
        backend = settings.check("dist_backend", final["dist_backend"])
        if backend == "auto":
            backend = "nccl" if use_cuda else "gloo"
        if backend == "nccl" and not use_cuda:
            raise settings.SettingsError("dist_backend", backend, "needs GPUs (use_gpu and CUDA); gloo runs on CPUs")
        nproc, world_size, offset = settings.processes(final)
        local_rank = final["local_rank"]
        timeout = settings.check("dist_timeout", final["dist_timeout"])
        if not dist.is_initialized():
            address = f"tcp://{final['ip']}:{final['port']}"
            try:
                dist.init_process_group(backend, init_method=address, rank=offset + local_rank, world_size=world_size,
                                        timeout=datetime.timedelta(seconds=timeout))
            except Exception as error:  # the store's timeout, a refused connection, ...
                raise DistributedError(
                    f"process {offset + local_rank} of {world_size} could not join the others at {address} within "
                    f"{timeout:g} s (dist_timeout): {error}"
                ) from None
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
            final["device"] = torch.device("cuda", local_rank)
        else:
            final["device"] = torch.device("cpu")
        final["single_spec"] = False
        final["world_size"] = world_size
        if local_rank != 0 or offset != 0:  # only the first process reports
            final["state"] = "error"
            final["show_progress"] = False
            final["verbose"] = False

    def _set_default_parameters(self):
        """RecBole's defaults, but a ``data_path`` given for ml-100k is honoured: RecBole points
        ml-100k at the copy inside its package whatever ``data_path`` says, so that a user's
        own copy (or a missing one) went unnoticed. Without ``data_path``, ml-100k stays the
        packaged copy (:func:`recbole_umi.checkpoints.content.rebuild_settings` drops a
        checkpoint's path to the packaged copy of the machine it trained on)."""
        given = self.external_config_dict.get("data_path")
        super()._set_default_parameters()
        if self.dataset == "ml-100k" and given is not None:
            self.final_config_dict["data_path"] = os.path.join(given, self.dataset)

    def _load_cmd_line(self):
        return self._convert_config_dict(parse_cmd_args(self._cmd_args))

    def _get_model_and_dataset(self, model, dataset):
        if model is None:
            model = self.external_config_dict.get("model")
            if model is None:
                raise KeyError(
                    "model must be given: as an argument, in a config file, in config_dict "
                    "or on the command line (--model=UMI)"
                )
        if isinstance(model, str):
            model_class = registry.get_model(model)
        else:
            model_class, model = model, model.__name__
        if dataset is None:
            dataset = self.external_config_dict.get("dataset")
            if dataset is None:
                raise KeyError(
                    "dataset must be given: as an argument, in a config file, in "
                    "config_dict or on the command line (--dataset=ml-100k)"
                )
        return model, model_class, dataset

    def _load_internal_config_dict(self, model, model_class, dataset):
        super()._load_internal_config_dict(model, model_class, dataset)
        class_layers = [model_properties_file(cls.__name__) for cls in reversed(model_class.__mro__)]
        for layer in [resource_dir("properties") / "overall.yaml", *class_layers]:
            if layer.is_file():
                self._update_internal_config_dict(str(layer))
        for layer in dataset_config_layers(dataset):
            added = self._update_internal_config_dict(str(layer)) or {}
            self.parameters["Dataset"] += [key for key in added if key not in self.parameters["Dataset"]]
        self.internal_config_dict.pop(BASE_CONFIG_KEY, None)
        if BASE_CONFIG_KEY in self.parameters["Dataset"]:
            self.parameters["Dataset"].remove(BASE_CONFIG_KEY)

    def _get_final_config_dict(self):
        final = super()._get_final_config_dict()
        _load_profile_fields(final)
        return final


def _check_empty_histories(config) -> None:
    """Cold start with no history at all (``eval_history_items`` 0, or 0 in
    ``eval_history_curve``) leaves a model only the user's profile, and ``history_dropout``
    trains on such samples: both refused, before any data is loaded, for a model that has
    nothing to answer such a user with: one that reads no profile (its encoder has nothing to
    read; a sequence encoder fails on an empty one), or reads it only to weigh the history
    (UMISA without its refinement: every score 0)."""
    model_class = config.model_class
    if issubclass(model_class, MatchingRecommender):
        if model_class.answers_empty_history(config):
            return
        why = ("it reads the history only (no user profile)" if not model_class.reads_profile(config) else
               "its profile only weighs the history (it has no interests without one)")
    elif not getattr(model_class, "reads_history", True):
        return
    else:
        why = "it reads the history only (no user profile)"
    if "history_dropout" in config and config["history_dropout"]:
        raise settings.SettingsError(
            "history_dropout", config["history_dropout"], f"must be 0 with {config['model']}: {why}, and history "
            "dropout trains it on samples with no history at all",
        )
    curve = config["eval_history_curve"] if "eval_history_curve" in config else None
    if ("eval_history_items" in config and config["eval_history_items"] == 0) or 0 in (curve or []):
        key = "eval_history_items" if config["eval_history_items"] == 0 else "eval_history_curve"
        raise settings.SettingsError(
            key, config[key], f"must not ask for 0 history items with {config['model']}: {why}, so a user without "
            "history gives it nothing to go on",
        )


def _check_windows(config) -> None:
    """``train_sampling: windows`` predicts the item after each history position, so every
    history item must be the user's next one: refused with what would break that (shortened
    histories, a cap that leaves the first targets out), before any data is loaded."""
    if "train_sampling" not in config or config["train_sampling"] != "windows":
        if "window_stride" in config and config["window_stride"] is not None:
            raise settings.SettingsError("window_stride", config["window_stride"],
                                         "needs train_sampling: windows (other training rows have no windows)")
        return
    if config["eval_protocol"] != "user_split":
        raise settings.SettingsError("train_sampling", "windows", "needs eval_protocol: user_split (RecBole's "
                                     "protocol builds its own training rows)")
    tower = getattr(config.model_class, "tower_class", None)
    if not getattr(tower, "causal", False):
        raise settings.SettingsError(
            "train_sampling", "windows", f"needs a plugin model with a causal encoder (SASRecMatching, UMISA): "
            f"{config['model']} cannot train on every position of a row (it would see only the last)",
        )
    stride = config["window_stride"] if "window_stride" in config else None
    if stride is not None and stride > config["MAX_ITEM_LIST_LENGTH"]:
        raise settings.SettingsError("window_stride", stride, f"must be at most T = MAX_ITEM_LIST_LENGTH "
                                     f"({config['MAX_ITEM_LIST_LENGTH']}): a row has T positions")
    for key, off in (("history_dropout", (0, 0.0, None)), ("max_samples_per_user", (None,)),
                     ("routing_regularization", (0, 0.0, None))):
        if key in config and config[key] not in off:
            raise settings.SettingsError(
                key, config[key], "must be off with train_sampling: windows (each history position's target is the "
                "item after it, every target of a training user is one row's position, and no prefix is routed)",
            )


def _warn_more_interests_than_items(config) -> None:
    """K interests routed from at most T history items: with K > T some interests can get no
    item of their own. Allowed (a setting may be swept past it), with a warning."""
    if not getattr(config.model_class, "routes_items", False) or "n_interests" not in config:
        return
    k, t = config["n_interests"], config["MAX_ITEM_LIST_LENGTH"]
    if k is not None and t is not None and k > t:
        getLogger().warning(f"n_interests = {k} is more than the {t} history items a user shows the model "
                            f"(MAX_ITEM_LIST_LENGTH): at least {k - t} interests get no item of their own")


def _load_profile_fields(final: dict) -> None:
    """Make sure RecBole loads the configured ``profile_fields`` from the ``.user`` file."""
    fields = final.get("profile_fields") or []
    load_col = final.get("load_col")
    if not fields or not isinstance(load_col, dict) or load_col.get("user") == "*":
        return  # no profile, or every column loaded (load_col None, or '*' for the .user file)
    user_columns = list(load_col.get("user") or [final.get("USER_ID_FIELD", "user_id")])
    user_columns += [field for field in fields if field not in user_columns]
    final["load_col"] = {**load_col, "user": user_columns}


def _yaml_keys(paths) -> set[str]:
    keys: set[str] = set()
    for path in paths:
        keys |= set(yaml.safe_load(Path(path).read_text()) or {})
    return keys


def recbole_source_keys() -> set[str]:
    """The keys RecBole's source reads as ``config["key"]`` (some models read keys that no
    YAML file of RecBole's sets), found by a regex over its files: a dependency on how its
    code is written, listed in :mod:`recbole_umi.internals`."""
    read = re.compile(r"config\[\s*['\"](\w+)['\"]\s*\]")
    keys: set[str] = set()
    for path in Path(recbole.__file__).parent.rglob("*.py"):
        keys |= set(read.findall(path.read_text(encoding="utf-8", errors="replace")))
    return keys


@functools.lru_cache(maxsize=1)
def _recbole_and_plugin_keys() -> frozenset[str]:
    """Every key of RecBole's property YAML files, its argument lists, and the ``config[...]``
    reads in its source (:func:`recbole_source_keys`), with the plugin's YAML keys and
    :data:`recbole_umi.settings.SETTINGS`. About 0.2 s, once per process."""
    root = Path(recbole.__file__).parent
    keys = _yaml_keys((root / "properties").rglob("*.yaml"))
    for name in ("general_arguments", "training_arguments", "evaluation_arguments", "dataset_arguments"):
        keys |= set(getattr(argument_list, name))
    keys |= recbole_source_keys()
    plugin_files = [*resource_dir("properties").rglob("*.yaml"), *resource_dir("dataset_configs").glob("*.yaml")]
    # model, dataset, config_files: what RecBole's own command line takes besides the YAML keys
    keys |= _yaml_keys(plugin_files) | set(settings.SETTINGS) | {"model", "dataset", "config_files", BASE_CONFIG_KEY}
    return frozenset(keys)


def dataset_field_names(config) -> set[str]:
    """The field names in the headers of the dataset's atomic files (``user_id`` of
    ``user_id:token``); empty where the dataset is not on disk yet (RecBole downloads it)."""
    folder = Path(config["data_path"])
    separator = config["field_separator"] or "\t"
    names: set[str] = set()
    for path in folder.glob(f"{config['dataset']}.*") if folder.is_dir() else []:
        names |= set(header_field_names(path, separator, config["encoding"] or "utf-8"))
    return names


def known_keys(config) -> set[str]:
    """The keys a config may hold without being taken for a typo: RecBole's (its YAML files,
    argument lists and the keys its code reads), the plugin's (YAML files and settings), and
    the dataset's field names."""
    return set(_recbole_and_plugin_keys()) | dataset_field_names(config)
