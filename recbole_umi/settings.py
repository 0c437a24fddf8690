"""Every recbole-umi setting, with its type and allowed range, validated in one place.

The defaults live in ``properties/`` and ``dataset_configs/`` (every key commented there);
this module says what each plugin key may hold. :func:`setting` is the one way plugin code
reads a setting: it returns the value, checked, or raises :class:`SettingsError` naming the
key, the value and what is allowed. :func:`validate` checks every plugin key of a config at
once, when the config is built, so that a bad value stops a run before any data is loaded.

Light on purpose: no torch, no RecBole.

Example::

    n_interests = setting(config, "n_interests")          # an int >= 1, or SettingsError
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any

__all__ = [
    "SettingsError",
    "UnknownSettingError",
    "Setting",
    "SETTINGS",
    "PROTOCOL_SETTINGS",
    "RUN_SETTINGS",
    "MODEL_SETTINGS",
    "EVAL_PROTOCOLS",
    "TRAIN_SAMPLINGS",
    "TIMESTAMP_TIES",
    "LOSS_TYPES",
    "NEGATIVE_SAMPLERS",
    "COMIREC_VARIANTS",
    "COMIREC_MAPS",
    "RETRIEVAL_MODES",
    "DIST_BACKENDS",
    "HIDDEN_ACTIVATIONS",
    "PROFILE_STEERINGS",
    "RENAMED_SETTINGS",
    "setting",
    "check",
    "validate",
    "check_known_keys",
    "check_nested_keys",
    "check_topk",
    "processes",
    "migrate_saved_settings",
    "check_retrieval_evaluation",
]

EVAL_PROTOCOLS = ("recbole", "user_split")
TRAIN_SAMPLINGS = ("all_positions", "one_per_user", "windows")
# The order of one user's interactions that share a timestamp (recbole_umi/data/protocol.py).
TIMESTAMP_TIES = ("file", "item_id")
LOSS_TYPES = ("sampled_softmax", "full_softmax")
NEGATIVE_SAMPLERS = ("uniform", "popularity")
COMIREC_VARIANTS = ("DR", "SA")
# ComiRec-DR's maps from an item to its K votes: one per history position, or one for all.
COMIREC_MAPS = ("per_position", "shared")
# How evaluation finds a user's top N (recbole_umi.retrieval): every item scored, or a faiss
# index searched, as a deployment would.
RETRIEVAL_MODES = ("full_sort", "faiss_exact", "faiss_ivf", "faiss_hnsw")
HIDDEN_ACTIVATIONS = ("gelu", "relu", "swish", "tanh", "sigmoid")
PROFILE_STEERINGS = ("queries", "gate", "none")


class SettingsError(ValueError):
    """A setting is missing, of the wrong type, out of range, or does not fit the data.

    Attributes:
        key: the config key.
        value: the value it had.
        requirement: what the value must be (e.g. "must be an integer in [1, inf)").
    """

    def __init__(self, key: str, value: Any, requirement: str):
        self.key, self.value, self.requirement = key, value, requirement
        shown = "empty" if value is None else f"{value!r}"
        super().__init__(f"setting {key!r} = {shown}: {requirement}")


_KIND_NAMES = {int: "an integer", float: "a number", bool: "True or False", str: "a string", list: "a list"}
_PLURALS = {int: "integers", float: "numbers", str: "strings", bool: "booleans", None: "values"}


@dataclass(frozen=True)
class Setting:
    """Type and range of one setting.

    Args:
        kind: ``int``, ``float``, ``bool``, ``str`` or ``list``.
        low, high: bounds for numbers (``None``: unbounded); ``math.inf`` may be a closed bound.
        low_open, high_open: exclude the bound itself.
        choices: the allowed values (strings).
        item_kind, length: for lists, the type of every item and the required length.
        note: why the range is what it is, appended to an error's requirement.
    """

    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple | None = None
    item_kind: type | None = None
    length: int | None = None
    note: str | None = None

    def describe(self) -> str:
        """What a valid value is, in words: ``"an integer in [1, inf)"``."""
        if self.choices == ():
            return "empty (~)"
        if self.choices is not None:
            return f"one of {', '.join(map(repr, self.choices))}"
        if self.kind is list:
            count = f"{self.length} " if self.length else ""
            noun = _PLURALS[self.item_kind]
            bounds = f", each in {self._interval()}" if self.low is not None or self.high is not None else ""
            return f"a list of {count}{noun}{bounds}"
        if self.low is None and self.high is None:
            return _KIND_NAMES[self.kind]
        return f"{_KIND_NAMES[self.kind]} in {self._interval()}"

    def requirement(self) -> str:
        """What an error says is required: ``"must be an integer in [1, inf)"``, and why."""
        return f"must be {self.describe()}" + (f": {self.note}" if self.note else "")

    def _interval(self) -> str:
        low = "-inf" if self.low is None else _number(self.low)
        high = "inf" if self.high is None else _number(self.high)
        opening = "(" if self.low_open or self.low is None or self.low == -math.inf else "["
        closing = ")" if self.high_open or self.high is None else "]"
        return f"{opening}{low}, {high}{closing}"

    def check(self, key: str, value: Any) -> Any:
        """``value`` if it is valid for ``key`` (ints become floats for float settings), else
        :class:`SettingsError`."""
        if self.kind is list:
            if not isinstance(value, (list, tuple)) or (self.length is not None and len(value) != self.length):
                raise SettingsError(key, value, self.requirement())
            if self.item_kind is None:
                return list(value)
            item = Setting(self.item_kind, self.low, self.high, self.low_open, self.high_open)
            try:
                return [item.check(key, v) for v in value]
            except SettingsError:
                raise SettingsError(key, value, self.requirement()) from None
        converted = _of_kind(self, key, value)
        if self.choices is not None and converted not in self.choices:
            raise SettingsError(key, value, self.requirement())
        if self.kind in (int, float) and not self._in_range(converted):
            raise SettingsError(key, value, self.requirement())
        return converted

    def _in_range(self, value) -> bool:
        if math.isnan(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or not (value > self.high or (self.high_open and value == self.high))


def _number(bound: float) -> str:
    return "inf" if bound == math.inf else f"{bound:g}"


def _of_kind(spec: Setting, key: str, value: Any) -> Any:
    """``value`` converted to ``spec.kind`` where that loses nothing (an int for a float
    setting), else :class:`SettingsError`. ``True`` is no integer and ``1`` no bool."""
    kind = spec.kind
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, kind) and not (kind is not bool and isinstance(value, bool)):
        return value
    raise SettingsError(key, value, spec.requirement())


# Settings every run has, plugin and RecBole models alike (properties/overall.yaml).
PROTOCOL_SETTINGS: dict[str, Setting] = {
    "eval_protocol": Setting(str, choices=EVAL_PROTOCOLS),
    "user_split_ratios": Setting(list, item_kind=float, low=0.0, low_open=True, length=3),
    "user_split_seed": Setting(int),
    "history_share": Setting(float, low=0.0, high=1.0, low_open=True, high_open=True),
    "train_sampling": Setting(str, choices=TRAIN_SAMPLINGS, note="training rows: every target, one random target "
                                                                 "per user, or windows of T targets (causal encoders)"),
    "window_stride": Setting(int, low=1, note="train_sampling: windows: a row every this many targets, which its last "
                                              "this many positions predict; ~ is T (rows that do not overlap)"),
    # the cold-start protocol and its training (docs/protocol.md); ~ (None) where off
    "eval_history_items": Setting(int, low=0, note="a held-out user's first k interactions are the model's input; "
                                                    "~ is the paper's cut (history_share)"),
    "eval_history_curve": Setting(list, item_kind=int, low=0, note="values of eval_history_items the final model "
                                                                   "is also evaluated at"),
    "history_dropout": Setting(float, low=0.0, high=1.0, high_open=True,
                               note="the share of training samples whose history is the user's first j items, "
                                    "j uniform in 0..min(T, the items before the target)"),
    "exclude_history": Setting(bool, note="leave a held-out user's history out of its ranking"),
    "also_exclude_history": Setting(bool, note="also test the final model with the history left out"),
    "max_samples_per_user": Setting(int, low=1, note="a training user's samples: its last N target positions; "
                                                     "~ is every position"),
    "timestamp_ties": Setting(str, choices=TIMESTAMP_TIES, note="the order of one user's interactions with the "
                                                                "same timestamp"),
}

DIST_BACKENDS = ("auto", "gloo", "nccl")
_NO_PICKLE = ("RecBole writes these files with pickle and reads them back with pickle, which can run "
              "code from the file; recbole-umi builds datasets and loaders from the atomic files instead")

# Settings of every run, RecBole's models' too, since they mean the same for every model:
# RecBole's own whose ranges the plugin's YAML files promise, the processes of a run, the
# pickled files the plugin refuses, and the plugin's run-wide keys (category_field,
# keep_freed_memory, offline, fused_optimizer, compile_step).
RUN_SETTINGS: dict[str, Setting] = {
    "MAX_ITEM_LIST_LENGTH": Setting(int, low=1, note="T, the history length (0 would feed the models no history)"),
    "epochs": Setting(int, low=1),
    "stopping_step": Setting(int, low=1),
    "train_batch_size": Setting(int, low=1),
    "eval_batch_size": Setting(int, low=1),
    "learning_rate": Setting(float, low=0.0, low_open=True),
    "nproc": Setting(int, low=1, note="training processes on this machine"),
    "world_size": Setting(int, low=-1, note="processes on all machines; -1 is nproc (one machine)"),
    "local_rank": Setting(int, low=0, note="set by recbole_umi for the processes it starts"),
    "offset": Setting(int, low=0, note="global rank of this machine's first process"),
    "ip": Setting(str),
    "port": Setting(int, low=0, high=65535, note="0 picks a free port (one machine only)"),
    "dist_backend": Setting(str, choices=DIST_BACKENDS),
    "dist_timeout": Setting(float, low=0.0, low_open=True, note="seconds a process waits for its peers"),
    "keep_freed_memory": Setting(bool, note="keep freed memory in the process (recbole_umi.allocator)"),
    "fused_optimizer": Setting(bool, note="Adam and AdamW (learner) as torch's fused kernel: one operation for all "
                                          "parameters a step"),
    "compile_step": Setting(bool, note="the training loss through torch.compile (inductor; needs a C++ compiler)"),
    "offline": Setting(bool, note="never download a dataset (a data_path given is offline too)"),
    "save_dataset": Setting(bool, choices=(False,), note=_NO_PICKLE),
    "save_dataloaders": Setting(bool, choices=(False,), note=_NO_PICKLE),
    "dataset_save_path": Setting(str, choices=(), note=_NO_PICKLE),
    "dataloaders_save_path": Setting(str, choices=(), note=_NO_PICKLE),
    "category_field": Setting(str, note="an item field of the .item file holding each item's categories"),
}

# Settings of the plugin's models (properties/model/*.yaml). RecBole's own models may use
# some of these names differently (SASRec's loss_type is 'CE'), so they are checked for the
# plugin's models only. A key means one thing: the models that read it are those whose
# settings objects hold it (recbole_umi.towers.settings; a model class's ``setting_keys``).
# A model class narrows some of them in its ``setting_restrictions`` (the single-interest
# models' n_interests, ComiRecDR's comirec_variant).
MODEL_SETTINGS: dict[str, Setting] = {
    "embedding_size": Setting(int, low=1),
    "n_interests": Setting(int, low=1),
    "profile_fields": Setting(list, item_kind=str),
    "profile_embedding_size": Setting(int, low=1),
    "float_profile_buckets": Setting(int, low=1),
    "loss_type": Setting(str, choices=LOSS_TYPES),
    "harder_negatives": Setting(bool),
    "n_negatives": Setting(int, low=1),
    "negative_sampler": Setting(str, choices=NEGATIVE_SAMPLERS),
    "shared_negatives": Setting(bool),
    "logq_correction": Setting(bool),
    "softmax_temperature": Setting(float, low=0.0, low_open=True),
    "readout_power": Setting(float, low=0.0, high=math.inf),
    "routing_iterations": Setting(int, low=1),
    "routing_init_std": Setting(float, low=0.0),
    "routing_regularization": Setting(float, low=0.0),
    "profile_noise": Setting(float, low=0.0, high=1.0),
    "profile_noise_seed": Setting(int),
    "uganet_hidden_size": Setting(int, low=1),  # UMI: d_h of UGANet (Eq 2) and the field-relevance MLP (Eq 7)
    "attention_hidden_size": Setting(int, low=1),  # ComiRec-SA, UMISA: the attention heads' hidden size
    "refine_hidden_size": Setting(int, low=1),
    "mlp_hidden_size": Setting(int, low=1),
    "use_dar": Setting(bool),
    "use_ir": Setting(bool),
    "comirec_variant": Setting(str, choices=COMIREC_VARIANTS),
    "comirec_maps": Setting(str, choices=COMIREC_MAPS, note="ComiRec-DR's bilinear maps: one per history position "
                                                            "(the official code's default) or one shared by all"),
    "position_embedding": Setting(bool, note="ComiRec-SA: a learned position embedding added to the attention's input "
                                             "(the official add_pos)"),
    "dynamic_interests": Setting(bool, note="MIND: K'_u = max(1, min(K, floor(log2 n_u))) interests for a user with "
                                            "n_u history items"),
    "profile_steering": Setting(str, choices=PROFILE_STEERINGS, note="UMISA: how the profile steers the extraction of "
                                                                      "the interests from the encoder's states"),
    "recent_interest": Setting(bool, note="UMISA: the encoder's state at the last position is one of the K interests"),
    "refine_interests": Setting(bool, note="UMISA: the extracted interests are refined with the profile (Eq 7-9); "
                                           "False keeps them as extracted"),
    "retrieval": Setting(str, choices=RETRIEVAL_MODES),
    "retrieval_nlist": Setting(int, low=0, note="0 chooses about 4 sqrt(#items) cells"),
    "retrieval_nprobe": Setting(int, low=1),
    "retrieval_hnsw_m": Setting(int, low=2),
    "retrieval_ef_construction": Setting(int, low=1),
    "retrieval_ef_search": Setting(int, low=1),
    # the causal encoder of SASRecMatching and UMISA (RecBole's SASRec)
    "n_layers": Setting(int, low=1),
    "n_heads": Setting(int, low=1),
    "inner_size": Setting(int, low=1),
    "hidden_dropout_prob": Setting(float, low=0.0, high=1.0, high_open=True),
    "attn_dropout_prob": Setting(float, low=0.0, high=1.0, high_open=True),
    "hidden_act": Setting(str, choices=HIDDEN_ACTIVATIONS),
    "layer_norm_eps": Setting(float, low=0.0, low_open=True),
    "initializer_range": Setting(float, low=0.0, low_open=True),
}

SETTINGS: dict[str, Setting] = {**PROTOCOL_SETTINGS, **RUN_SETTINGS, **MODEL_SETTINGS}


def check(key: str, value: Any) -> Any:
    """``value`` validated as the setting ``key`` (see :data:`SETTINGS`)."""
    return SETTINGS[key].check(key, value)


def setting(config, key: str) -> Any:
    """``config[key]``, validated; a missing or empty key is a :class:`SettingsError`."""
    value = config[key] if key in config else None
    if value is None:
        raise SettingsError(key, None, f"must be {SETTINGS[key].describe()} (set it in a config file or as --{key}=...)")
    return check(key, value)


def window_stride(config) -> int:
    """``train_sampling: windows``' stride: ``window_stride``, or T (``MAX_ITEM_LIST_LENGTH``),
    windows that do not overlap, when it is not set."""
    return config["window_stride"] or config["MAX_ITEM_LIST_LENGTH"]


# Keys a model once read under another name, by model: ``{old: new}``. A config that gives
# the model the old key is refused with the new name (the old one may mean something else
# for another model); settings saved under the old name (checkpoints, exports) are migrated.
RENAMED_SETTINGS: dict[str, dict[str, str]] = {
    "UMI": {"attention_hidden_size": "uganet_hidden_size"},
}


# Settings added with a default other than what models saved before them computed: a saved
# setting that lacks the key computed this.
_COMIREC_BEFORE = {"comirec_maps": "shared", "position_embedding": False}  # before 2026-12-03
SETTINGS_BEFORE_THEY_EXISTED = {
    "ComiRec": _COMIREC_BEFORE, "ComiRecDR": _COMIREC_BEFORE, "ComiRecSA": _COMIREC_BEFORE,
    "MIND": {"dynamic_interests": False},
    "UMISA": {"refine_interests": True},  # added 2026-12-06
}


def migrate_saved_settings(model: str, saved: dict) -> dict:
    """``saved`` (a checkpoint's or an export's settings of a ``model``) with the keys of
    :data:`RENAMED_SETTINGS` under their new names (the new name, if there, wins) and the
    keys of :data:`SETTINGS_BEFORE_THEY_EXISTED` it lacks at what it computed then."""
    migrated = dict(saved)
    for old, new in RENAMED_SETTINGS.get(model, {}).items():
        if old in migrated:
            value = migrated.pop(old)
            migrated.setdefault(new, value)
    for key, then in SETTINGS_BEFORE_THEY_EXISTED.get(model, {}).items():
        migrated.setdefault(key, then)
    return migrated


def validate(config, plugin_model: bool, restrictions: dict[str, Setting] | None = None) -> None:
    """Check every setting ``config`` holds: the protocol's and the run's always (where not
    empty), and the models' when ``plugin_model`` (a recbole-umi model), each also against
    the model's narrower ``restrictions``. A key the model once read under another name
    (:data:`RENAMED_SETTINGS`) is refused, naming the new one. Keys a config does not hold
    are left to the code that needs them (the models' settings objects)."""
    for key in (*PROTOCOL_SETTINGS, *RUN_SETTINGS):
        if key in config and config[key] is not None:  # the protocol in use needs them
            check(key, config[key])
    if plugin_model:
        for key in MODEL_SETTINGS:
            if key in config:
                setting(config, key)  # an empty value is an error too
        for old, new in RENAMED_SETTINGS.get(config["model"], {}).items():
            if old in config and config[old] is not None:
                raise SettingsError(old, config[old], f"is not a setting of {config['model']}: its name there is now "
                                                      f"{new!r} (set {new} instead)")
    _check_processes(config)
    metrics = [str(m).lower() for m in (config["metrics"] if "metrics" in config and config["metrics"] else [])]
    _check_valid_metric(config, metrics)
    if "categorycoverage" in metrics and not ("category_field" in config and config["category_field"]):
        raise SettingsError("category_field", None, "must name the item field of categories when metrics include CategoryCoverage")
    if not plugin_model and "retrieval" in config and config["retrieval"] not in (None, "full_sort"):
        raise SettingsError("retrieval", config["retrieval"],
                            "must be 'full_sort' for RecBole's own models: only recbole-umi models search a faiss index")
    for key, narrower in (restrictions or {}).items():
        if key in config and config[key] is not None:
            narrower.check(key, config[key])


def check_retrieval_evaluation(config) -> None:
    """A faiss ``retrieval`` needs a full-sort evaluation: under RecBole's protocol with a
    sampled one (``eval_args``' mode ``uni100``, ``pop100``), RecBole scores each user's
    sampled candidates only and the index would be built for nothing, unsaid. Checked where
    a run evaluates (before it trains, and at each evaluation), not for every config: an
    export chooses its index with the same settings and evaluates nothing."""
    if "retrieval" not in config or config["retrieval"] in (None, "full_sort"):
        return
    if "eval_protocol" not in config or config["eval_protocol"] != "recbole":
        return  # the user split evaluates every item
    mode = (config["eval_args"] or {}).get("mode", "full") if "eval_args" in config else "full"
    modes = list(mode.values()) if isinstance(mode, dict) else [mode]
    if any(str(m) != "full" for m in modes):
        raise SettingsError("retrieval", config["retrieval"], f"needs a full-sort evaluation: eval_args' mode is {mode!r}, "
                            "whose sampled candidates RecBole scores without the index (use retrieval: full_sort)")


def _check_valid_metric(config, metrics: list[str]) -> None:
    """``valid_metric`` must be a metric the run computes (a name of ``metrics`` at a cut-off
    of ``topk``): RecBole finds out after the first training epoch, with a bare KeyError."""
    if "valid_metric" not in config or not config["valid_metric"] or not metrics:
        return
    from recbole.evaluator.register import metric_types  # loaded with the config; light modules never get here
    from recbole.utils import EvaluatorType

    topk = config["topk"] if "topk" in config and config["topk"] else []
    # a ranking metric's results are named at each cut-off (recall@10); a value metric's (auc) bare
    bare = {metric for metric in metrics if metric_types.get(metric) == EvaluatorType.VALUE}
    computed = bare | {f"{metric}@{k}" for metric in metrics for k in topk if metric not in bare}
    if str(config["valid_metric"]).lower() not in computed:
        shown = sorted(f"{metric}@{k}" for metric in metrics for k in topk) or sorted(metrics)
        raise SettingsError("valid_metric", config["valid_metric"],
                            f"must be one of the metrics the run computes (metrics x topk): {', '.join(shown)}")


def processes(config) -> tuple[int, int, int]:
    """``(nproc, world_size, offset)`` of a run: this machine's processes, all machines'
    processes (``world_size`` -1 is ``nproc``) and the global rank of this machine's first."""
    def get(key, default):
        return config[key] if key in config and config[key] is not None else default

    nproc = get("nproc", 1)
    world_size = get("world_size", -1)
    return nproc, nproc if world_size == -1 else world_size, get("offset", 0)


def _check_processes(config) -> None:
    nproc, world_size, offset = processes(config)
    if offset + nproc > world_size:
        raise SettingsError("world_size", world_size,
                            f"must be at least offset + nproc ({offset} + {nproc}): the processes of every machine")
    if "local_rank" in config and config["local_rank"] is not None and config["local_rank"] >= nproc:
        raise SettingsError("local_rank", config["local_rank"], f"must be below nproc ({nproc})")
    if world_size > nproc and "port" in config and config["port"] == 0:
        raise SettingsError("port", 0, "must be given on several machines: every machine needs the first one's port")


class UnknownSettingError(SettingsError):
    """A key no part of the run knows that is close to one it knows: taken for a typo."""


# How alike (difflib's ratio, after lower-casing) an unknown key and a known one must be for
# the unknown one to be taken for a typo: 'n_interest' / 'n_interests' is 0.95,
# 'MAX_ITEM_LIST_LEN' / 'MAX_ITEM_LIST_LENGTH' 0.92, 'epoch' / 'epochs' 0.91.
TYPO_SIMILARITY = 0.85


def check_known_keys(given: dict, known) -> None:
    """Refuse a key of ``given`` that is not in ``known`` but close to a known key (a typo,
    ``n_interest`` for ``n_interests``, which RecBole would carry along unread): an
    :class:`UnknownSettingError` with the close keys. An unknown key close to none passes:
    RecBole configs legitimately carry extra keys of their own."""
    known = set(known)
    by_lower: dict[str, list[str]] = {}
    for name in sorted(known):
        by_lower.setdefault(name.lower(), []).append(name)
    for key, value in given.items():
        if key in known:
            continue
        close = difflib.get_close_matches(key.lower(), list(by_lower), n=3, cutoff=TYPO_SIMILARITY)
        if close:
            names = " or ".join(repr(name) for lower in close for name in by_lower[lower])
            raise UnknownSettingError(
                key, value, f"is not a setting of RecBole, of recbole-umi or of the dataset; did you mean {names}?"
            )


# The keys RecBole 1.2.1 reads inside its dict-valued settings (``Config._set_default_parameters``
# fills in the missing ones and carries any other one unread: a misspelt ``spilt`` left the
# default split in force silently). By the path of the dict in the config.
NESTED_KEYS = {
    ("eval_args",): ("split", "order", "group_by", "mode"),
    ("eval_args", "split"): ("RS", "TS", "LS"),
    ("eval_args", "mode"): ("valid", "test"),
    ("train_neg_sample_args",): ("distribution", "sample_num", "alpha", "dynamic", "candidate_num"),
}


def check_nested_keys(given: dict) -> None:
    """Refuse a key inside ``eval_args`` (and its ``split`` and ``mode``) or
    ``train_neg_sample_args`` that RecBole does not read (:data:`NESTED_KEYS`): a
    :class:`UnknownSettingError` naming the setting, the keys it takes and a close one."""
    for path, keys in NESTED_KEYS.items():
        value = given
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if not isinstance(value, dict):
            continue
        for key in value:
            if key not in keys:
                close = difflib.get_close_matches(str(key), keys, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise UnknownSettingError(
                    ".".join(path), given[path[0]],
                    f"has no key {key!r}: RecBole reads {', '.join(keys)} there and would ignore it{hint}",
                )


def check_topk(topk, n_items: int, dataset: str) -> None:
    """Refuse cut-offs ``topk`` longer than the ``n_items`` items of the dataset (found once
    the dataset is loaded, before anything trains; RecBole would fail after training)."""
    if any(k > n_items for k in topk):
        raise SettingsError(
            "topk", topk,
            f"must be at most the number of items of the dataset {dataset!r} ({n_items}): "
            "a top-N list over the whole catalogue cannot be longer than the catalogue",
        )
