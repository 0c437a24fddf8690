"""Every internal of RecBole 1.2.1 and hyperopt 0.2.5 that recbole-umi relies on, in one list.

RecBole's private methods and attributes, and the public ones whose *body* we depend on,
are not an API: an upgrade may rename, move or rewrite them. A renamed name fails loudly
where it is used, but a moved call site turns an override or a patch into a silent no-op
(RecBole no longer calls it), and a fork (our copy of RecBole's code) silently overrides an
upstream fix. So each such name is listed here once, with what it is, who uses it, how and
why; ``tests/test_internals.py`` checks the list against the installed packages (the name
is where the entry says, with these parameters; an upstream body we depend on still has the
recorded digest) and scans the package for private RecBole names that are not listed.

After an upgrade, a failure there names the entry: re-read the upstream code, adapt the
module in ``used_by`` if its assumption no longer holds, then update the entry.

Fields of :class:`Internal`:

- ``name``: where it is defined, as a dotted path through modules and classes
  (``recbole.data.dataset.dataset.Dataset._load_feat``); an instance attribute is named
  under the class whose methods assign it;
- ``used_by``: our modules that touch it;
- ``how``: ``override`` (our method of that name, which RecBole calls), ``call``, ``read``,
  ``write`` (we set or mutate it), ``patch`` (:mod:`recbole_umi.compat` replaces it in
  RecBole's module), ``fork`` (we replace it with our own copy of its code), ``caller``
  (its body calls one of our overrides, or what a patch replaced, so our change takes
  effect only while it does), ``scan`` (we read RecBole's source files);
- ``why``: one line;
- ``params``: a function's parameter names, checked with ``inspect.signature`` (against
  RecBole's own code where :mod:`recbole_umi.compat` replaced it);
- ``digest``: where the body matters (forks, callers, bodies we reimplement), the first 16
  hex digits of the SHA-256 of its source as installed (``ast.get_source_segment``). For
  ``scan``, the digest of what the scan finds.

Light to import: nothing here imports RecBole or hyperopt.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Internal", "HOW", "INTERNALS"]

HOW = ("override", "call", "read", "write", "patch", "fork", "caller", "scan")


@dataclass(frozen=True)
class Internal:
    """One RecBole or hyperopt internal that recbole-umi relies on (see the module's docstring)."""

    name: str
    used_by: tuple[str, ...]
    how: str
    why: str
    params: tuple[str, ...] | None = None
    digest: str | None = None


_CONFIG = "recbole.config.configurator.Config"
_DATASET = "recbole.data.dataset.dataset.Dataset"
_SEQUENTIAL = "recbole.data.dataset.sequential_dataset.SequentialDataset"
_LOADER = "recbole.data.dataloader.abstract_dataloader.AbstractDataLoader"
_LOADERS = "recbole.data.dataloader.general_dataloader"
_TRAINER = "recbole.trainer.trainer.Trainer"
_TUNING = "recbole.trainer.hyper_tuning.HyperTuning"
_METRICS = "recbole.evaluator.metrics"

_UMI_CONFIG, _CHECKPOINTS = "recbole_umi.config", "recbole_umi.checkpoints"
_PROTOCOL, _CHECKS = "recbole_umi.data.protocol", "recbole_umi.data.checks"
_DATA_LOADERS = "recbole_umi.data.loaders"
_EVALUATION, _COMPAT, _TUNE = "recbole_umi.evaluation", "recbole_umi.compat", "recbole_umi.experiments.tune"
_TRANSFORMER = "recbole_umi.towers.transformer"

INTERNALS: tuple[Internal, ...] = (
    # -- Config: the plugin's layering hooks into RecBole's private build steps ----------------
    Internal(f"{_CONFIG}.__init__", (_UMI_CONFIG, f"{_CHECKPOINTS}.loading"), "caller",
             "calls the hooks below in this order; external_config_dict is built before _get_model_and_dataset",
             digest="e834fadf51392d95"),
    Internal(f"{_CONFIG}._load_config_files", (f"{_CHECKPOINTS}.loading",), "override",
             "a checkpoint's saved settings become the lowest user layer", params=("self", "file_list")),
    Internal(f"{_CONFIG}._load_cmd_line", (_UMI_CONFIG,), "override",
             "the command line comes from cmd_args, never from sys.argv", params=("self",)),
    Internal(f"{_CONFIG}._convert_config_dict", (_UMI_CONFIG,), "call",
             "command-line strings typed as RecBole types them", params=("self", "config_dict")),
    Internal(f"{_CONFIG}._set_default_parameters", (_UMI_CONFIG,), "override",
             "a data_path given for ml-100k is read, where RecBole's points ml-100k at its packaged copy",
             params=("self",), digest="02201a7cfea2b895"),
    Internal(f"{_CONFIG}._get_model_and_dataset", (_UMI_CONFIG,), "override",
             "model names resolved by the plugin's registry first", params=("self", "model", "dataset")),
    Internal(f"{_CONFIG}._load_internal_config_dict", (_UMI_CONFIG,), "override",
             "properties/ and dataset_configs/ overlaid on RecBole's internal layer",
             params=("self", "model", "model_class", "dataset")),
    Internal(f"{_CONFIG}._update_internal_config_dict", (_UMI_CONFIG,), "call",
             "loads one plugin YAML layer; its return value (the keys added) feeds parameters['Dataset']",
             params=("self", "file"), digest="47737a2ffff727ee"),
    Internal(f"{_CONFIG}.internal_config_dict", (_UMI_CONFIG,), "write", "base_config removed from the layer"),
    Internal(f"{_CONFIG}.parameters", (_UMI_CONFIG,), "write", "dataset-config keys registered as Dataset keys"),
    Internal(f"{_CONFIG}._get_final_config_dict", (_UMI_CONFIG,), "override",
             "profile_fields added to load_col['user']", params=("self",)),
    Internal(f"{_CONFIG}._init_device", (_UMI_CONFIG,), "override",
             "a distributed process joins its group (gloo or NCCL) here; RecBole's body for one process",
             params=("self",), digest="2e7ffbe385d1a477"),
    Internal("recbole", (_UMI_CONFIG,), "scan",
             "known_keys: the keys RecBole's code reads as config['key'] (a regex over its files)",
             digest="24ef975c30f2cdd8"),
    Internal("recbole.utils.argument_list.general_arguments", (_UMI_CONFIG,), "read", "known_keys"),
    Internal("recbole.utils.argument_list.training_arguments", (_UMI_CONFIG,), "read", "known_keys"),
    Internal("recbole.utils.argument_list.evaluation_arguments", (_UMI_CONFIG,), "read", "known_keys"),
    Internal("recbole.utils.argument_list.dataset_arguments", (_UMI_CONFIG,), "read", "known_keys"),
    Internal("recbole.utils.utils.get_model", ("recbole_umi.registry",), "caller",
             "models live in recbole/model/*_recommender/<name lower>.py: the registry looks there first",
             digest="2377ea368a69d50d"),
    Internal("recbole.utils.logger.init_logger", ("recbole_umi.run_log",), "fork",
             "init_run_logger makes the same handlers, one log file per run", digest="9ed21ff0833ae1f7"),
    # -- Dataset: data checks and the user-split protocol ------------------------------------
    Internal(f"{_DATASET}._from_scratch", (_CHECKS,), "caller",
             "loads the files (_load_data), then _data_processing: the checks run between",
             digest="d3452a7e622dd46b"),
    Internal(f"{_DATASET}._load_data", (_CHECKS, _COMPAT), "caller",
             "downloads (_download) and reads the files (_load_inter_feat, _load_user_or_item_feat)",
             digest="335da01bb30bd807"),
    Internal(f"{_DATASET}._load_inter_feat", (_CHECKS,), "caller", "reads the .inter file through _load_feat",
             digest="23fcb11a459905dd"),
    Internal(f"{_DATASET}._load_user_or_item_feat", (_CHECKS,), "caller",
             "reads .user and .item through _load_feat", digest="d30c1a5953be3c0a"),
    Internal(f"{_DATASET}._load_feat", (_CHECKS, _COMPAT), "override",
             "header and duplicate-user checks; compat's pd patch is effective only inside it",
             params=("self", "filepath", "source"), digest="228d748c46779518"),
    Internal(f"{_DATASET}._data_processing", (_CHECKS,), "override",
             "checks on the loaded tables before its body filters (_data_filtering) and fills (_fill_nan)",
             params=("self",), digest="57da038f7bcd6b04"),
    Internal(f"{_DATASET}._data_filtering", (_CHECKS,), "caller", "calls _filter_inter_by_user_or_item",
             digest="430cedd10073a45e"),
    Internal(f"{_DATASET}._remove_duplication", (_PROTOCOL,), "fork",
             "rm_dup_inter: RecBole's body with its sort by time made stable (UserSplitDataset)",
             params=("self",), digest="8739c275f4e7f92e"),
    Internal(f"{_DATASET}._filter_inter_by_user_or_item", (_CHECKS,), "override",
             "counts the users without a .user row before RecBole drops them", params=("self",)),
    Internal(f"{_SEQUENTIAL}._change_feat_format", (_PROTOCOL,), "call",
             "DataFrames to Interactions, then data_augmentation (ours), as RecBole's build starts",
             params=("self",), digest="92c581eaa0412d47"),
    Internal(f"{_DATASET}._check_field", (_PROTOCOL,), "call", "the user and time fields exist",
             params=("self", "field_names")),
    Internal(f"{_DATASET}._get_load_and_unload_col", (_CHECKS,), "call",
             "the columns load_col asks of a file, checked against its header", params=("self", "source")),
    Internal(f"{_DATASET}.__getitem__", (_PROTOCOL,), "override",
             "rows gathered with one tensor index, history windows built per batch",
             params=("self", "index", "join"), digest="afc6d4351df8b8f2"),
    Internal(f"{_DATASET}._fill_nan", (_COMPAT,), "fork",
             "compat._fill_nan assigns the filled columns (pandas 3 ignores chained fillna)",
             params=("self",), digest="7665807af1cb4c46"),
    Internal(f"{_DATASET}._download", (_COMPAT,), "caller",
             "calls torch.distributed.barrier(), which compat's torch patch skips without a process group",
             digest="608edda41239e12b"),
    Internal("recbole.data.dataset.dataset.torch", (_COMPAT,), "patch", "barrier without a process group"),
    Internal("recbole.data.dataset.dataset.pd", (_COMPAT,), "patch", "read_csv with the C parser"),
    Internal(f"{_SEQUENTIAL}.data_augmentation", (_PROTOCOL,), "override",
             "the user split builds its own rows; only the *_list fields are declared. Under RecBole's "
             "protocol (CheckedSequentialDataset) its rows, after the one-interaction users are kept aside",
             params=("self",),
             digest="cac69a45c79167b0"),
    Internal(f"{_SEQUENTIAL}._aug_presets", (_PROTOCOL,), "call", "declares the *_list fields",
             params=("self",)),
    Internal(f"{_SEQUENTIAL}.build", (_PROTOCOL,), "override",
             "UserSplitDataset.build splits users instead of RecBole's eval_args", params=("self",),
             digest="6d27795911f5e2a2"),
    # -- data loaders -------------------------------------------------------------------------
    Internal(f"{_LOADER}.__init__", (_DATA_LOADERS, _UMI_CONFIG), "caller",
             "calls _init_batch_size_and_step before indexing range(sample_size); shards when not single_spec",
             digest="a72ff44c4b33557b"),
    Internal(f"{_LOADER}._dataset", (_DATA_LOADERS, _EVALUATION, "recbole_umi.quick_start", f"{_CHECKPOINTS}.trainer",
                                     "recbole_umi.pipeline"),
             "read", "the loader's dataset: its targets, users and ids, its size; the digest of its interactions"),
    Internal(f"{_LOADERS}.TrainDataLoader.__init__", (_DATA_LOADERS,), "caller",
             "sets sample_size before AbstractDataLoader.__init__ calls _init_batch_size_and_step",
             digest="013098d01b6d11b4"),
    Internal(f"{_LOADERS}.TrainDataLoader._init_batch_size_and_step", (_DATA_LOADERS,), "override",
             "one_per_user indexes users, not rows (sample_size)", params=("self",)),
    Internal(f"{_LOADERS}.FullSortEvalDataLoader.collate_fn", (_DATA_LOADERS,), "override",
             "each held-out user's targets are its positives; same 4-tuple as RecBole's", params=("self", "index"),
             digest="77dc53e04ae6ff92"),
    # -- compat's patches of the data module ---------------------------------------------------
    Internal("recbole.data.utils.pickle", (_COMPAT,), "patch", "pickle.load refuses: no cache is unpickled"),
    Internal("recbole.data.utils.load_split_dataloaders", (_COMPAT,), "patch",
             "no data-loader cache is looked for", params=("config",)),
    Internal("recbole.data.utils.create_dataset", (_COMPAT,), "caller",
             "unpickles a dataset cache with pickle.load", digest="9c520390cdda03c8"),
    Internal("recbole.data.utils.data_preparation", (_COMPAT,), "caller",
             "calls load_split_dataloaders", digest="d28d990f729c1b4d"),
    # -- Trainer: safe checkpoints, evaluation through an index ---------------------------------
    Internal("recbole.trainer.trainer.AbstractTrainer.__init__", (f"{_CHECKPOINTS}.trainer",), "caller",
             "wraps the model for GPUs only unless single_spec: the mixin hides single_spec and wraps itself",
             digest="227796ad54f8219c"),
    Internal(f"{_TRAINER}.__init__", (f"{_CHECKPOINTS}.trainer",), "caller",
             "names saved_model_file by the start time: the mixin gives every process the first's name",
             digest="f286a9880bbed48d"),
    Internal(f"{_TRAINER}.fit", (f"{_CHECKPOINTS}.trainer",), "caller",
             "calls _train_epoch, _valid_epoch, _save_checkpoint and callback_fn(epoch, score) in this order",
             digest="ed8a1685857e0b91"),
    Internal(f"{_TRAINER}._train_epoch", (f"{_CHECKPOINTS}.trainer", _COMPAT), "override",
             "the -last file of the previous epoch; compat's amp patch is effective inside it",
             params=("self", "train_data", "epoch_idx", "loss_func", "show_progress"), digest="28ba1525adaa1d09"),
    Internal(f"{_TRAINER}._build_optimizer", (f"{_CHECKPOINTS}.trainer",), "override",
             "builds the optimizer from config['learner'] in __init__; fused_optimizer rebuilds Adam and AdamW fused",
             params=("self", "kwargs")),
    Internal(f"{_TRAINER}._check_nan", (f"{_CHECKPOINTS}.trainer",), "override",
             "called with each batch's loss in _train_epoch; the mixin refuses inf as well as NaN",
             params=("self", "loss")),
    Internal(f"{_TRAINER}._valid_epoch", (f"{_CHECKPOINTS}.trainer",), "override",
             "keeps the epoch's validation result for the best checkpoint",
             params=("self", "valid_data", "show_progress")),
    Internal(f"{_TRAINER}._save_checkpoint", (f"{_CHECKPOINTS}.trainer", f"{_CHECKPOINTS}.recbole_format"),
             "override", "plain-data checkpoints; the conversion reads the entries RecBole's writes",
             params=("self", "epoch", "verbose", "kwargs"), digest="28657092b455028a"),
    Internal(f"{_TRAINER}.resume_checkpoint", (f"{_CHECKPOINTS}.trainer",), "override",
             "reads weights-only; restores epoch, early stopping and random states", params=("self", "resume_file"),
             digest="dbea28588ef31337"),
    Internal(f"{_TRAINER}.evaluate", (f"{_CHECKPOINTS}.trainer", _EVALUATION, "recbole_umi.quick_start"), "caller",
             "full sort goes through _full_sort_batch_eval, then self.evaluator.evaluate(struct)",
             digest="25fab7aa845339d5"),
    Internal(f"{_TRAINER}._full_sort_batch_eval", (_EVALUATION,), "override",
             "scores through a faiss index; the padding item and history set to -inf as here",
             params=("self", "batched_data"), digest="345a73ac154cf8e0"),
    Internal("recbole.trainer.trainer.amp", (_COMPAT,), "patch", "torch.amp.GradScaler('cuda') without a deprecation"),
    # -- the evaluator: a registered metric, per-user values ------------------------------------
    Internal("recbole.evaluator.register.metrics_dict", (_EVALUATION,), "write", "CategoryCoverage registered"),
    Internal("recbole.evaluator.register.metric_information", (_EVALUATION,), "write", "CategoryCoverage's needs"),
    Internal("recbole.evaluator.register.metric_types", (_EVALUATION,), "write", "CategoryCoverage's type"),
    Internal(f"{_CONFIG}._set_default_parameters", (_EVALUATION,), "caller",
             "reads metric_types and smaller_metrics, so CategoryCoverage must be registered before",
             digest="02201a7cfea2b895"),
    Internal("recbole.evaluator.register.Register._build_register", (_EVALUATION,), "caller",
             "reads metric_information (the same dict object)", digest="0de9d1190d08d509"),
    Internal("recbole.evaluator.evaluator.Evaluator.__init__", (_EVALUATION,), "caller",
             "reads metrics_dict (the same dict object)", digest="826e44b5c107604a"),
    *(Internal(f"{_METRICS}.{metric}.metric_info", (_EVALUATION,), "call",
               "per_user_topk passes pos_len where metric_info.__code__.co_argcount is 3", params=params)
      for metric, params in (("Hit", ("self", "pos_index")), ("MRR", ("self", "pos_index")),
                             ("MAP", ("self", "pos_index", "pos_len")), ("Recall", ("self", "pos_index", "pos_len")),
                             ("NDCG", ("self", "pos_index", "pos_len")), ("Precision", ("self", "pos_index")))),
    # -- HyperTuning and hyperopt: a resumable search -------------------------------------------
    Internal(f"{_TUNING}.__init__", (_TUNE,), "call",
             "sets space, algo, max_evals and early_stop_fn, which Tuning reads and overrides",
             params=("self", "objective_function", "space", "params_file", "params_dict", "fixed_config_file_list",
                     "display_file", "algo", "max_evals", "early_stop"), digest="d41cd0d3829b1efc"),
    Internal(f"{_TUNING}._build_space_from_dict", (_TUNE,), "caller",
             "the space built from read_params_file's dict (through params_dict)", params=("config_dict",),
             digest="7d90e76221715754"),
    Internal(f"{_TUNING}.trial", (_TUNE,), "override",
             "calls objective_function(params, fixed_config_file_list), stores params2result[params2str(params)]",
             params=("self", "params"), digest="19d6bc3afc3e1a2e"),
    Internal(f"{_TUNING}.run", (_TUNE,), "override",
             "replaced: finished trials are read back into hyperopt, which RecBole's run would start afresh",
             params=("self",), digest="688e4dde925152dd"),
    Internal(f"{_TUNING}.params2str", (_TUNE,), "call", "the key of params2result", params=("params",)),
    Internal(f"{_TUNING}.params2result", (_TUNE,), "read", "the trial's result"),
    Internal("hyperopt.fmin.fmin", (_TUNE,), "call", "the search, with rstate and early_stop_fn",
             params=("fn", "space", "algo", "max_evals", "timeout", "loss_threshold", "trials", "rstate",
                     "allow_trials_fmin", "pass_expr_memo_ctrl", "catch_eval_exceptions", "verbose",
                     "return_argmin", "points_to_evaluate", "max_queue_len", "show_progressbar", "early_stop_fn",
                     "trials_save_file")),
    Internal("hyperopt.fmin.FMinIter.run", (_TUNE,), "caller",
             "draws one rstate.randint(2**31 - 1) per proposed trial: a resumed search skips as many",
             digest="66d8bfa214c3c4b8"),
    Internal("hyperopt.fmin.generate_trial", (_TUNE,), "caller",
             "the trial document (misc: tid, cmd, workdir, idxs, vals) that finished trials are read back in",
             digest="7f3b67442d79f5b8"),
    Internal("hyperopt.base.Trials.new_trial_ids", (_TUNE,), "call", "finished trials read back",
             params=("self", "n")),
    Internal("hyperopt.base.Trials.new_trial_docs", (_TUNE,), "call", "finished trials read back",
             params=("self", "tids", "specs", "results", "miscs")),
    Internal("hyperopt.base.Trials.insert_trial_docs", (_TUNE,), "call", "finished trials read back",
             params=("self", "docs")),
    Internal("hyperopt.base.Trials.refresh", (_TUNE,), "call", "finished trials read back", params=("self",)),
    Internal("hyperopt.exceptions.AllTrialsFailed", (_TUNE,), "read",
             "fmin raises it at its end when every trial failed; tune's best_trial says so instead"),
    # -- compile_step for RecBole's own models: their forwards recomputed (model.base) ----------
    Internal("recbole.model.abstract_recommender.SequentialRecommender.get_attention_mask", ("recbole_umi.model.base",),
             "fork", "fast_cpu_modules: the causal mask through ops.causal_attention_mask (the same mask)",
             params=("self", "item_seq", "bidirectional"), digest="291b5aa0c7bac379"),
    Internal("recbole.model.sequential_recommender.sine.SINE.forward", ("recbole_umi.model.base",), "fork",
             "_sine_forward: the interests' maps in one product, tanh from one exponential (the same values)",
             params=("self", "item_seq", "item_seq_len"), digest="55182e13e4fd739b"),
    Internal("recbole.model.sequential_recommender.sasrec.SASRec.forward", ("recbole_umi.model.base",), "fork",
             "_sasrec_forward: the last layer at the returned position only (the same values)",
             params=("self", "item_seq", "item_seq_len"), digest="b3aca6e2ac8dd619"),
    Internal("recbole.model.layers.TransformerEncoder.forward", (_TRANSFORMER,), "fork",
             "last_position_output: its loop over the layers, but for the last",
             params=("self", "hidden_states", "attention_mask", "output_all_encoded_layers"), digest="e5be834c2faa2367"),
    Internal("recbole.model.abstract_recommender.SequentialRecommender.gather_indexes", (_TRANSFORMER,),
             "fork", "last_state: each row's state at its last position (in _sasrec_forward too)",
             params=("self", "output", "gather_index"), digest="8b8a81a69acd7eb4"),
    Internal("recbole.model.layers.MultiHeadAttention.transpose_for_scores", (_TRANSFORMER,), "fork",
             "attention_at splits the heads as it does (a view, the caller permutes)",
             params=("self", "x"), digest="3642760b229829f4"),
    Internal("recbole.model.layers.MultiHeadAttention.num_attention_heads", (_TRANSFORMER,), "read",
             "attention_at splits the heads itself (RecBole's transpose_for_scores)"),
    Internal("recbole.model.layers.MultiHeadAttention.attention_head_size", (_TRANSFORMER,), "read",
             "attention_at splits the heads itself (RecBole's transpose_for_scores)"),
    Internal("recbole.model.layers.TransformerLayer.forward", (_TRANSFORMER,), "fork",
             "last_position_output: the last layer's attention, then its feed-forward layer, called one by one",
             params=("self", "hidden_states", "attention_mask"), digest="b830d6c3b36150ae"),
    Internal("recbole.model.layers.MultiHeadAttention.forward", (_TRANSFORMER,), "fork",
             "attention_at: its body with the queries from some positions, keys and values from all",
             params=("self", "input_tensor", "attention_mask"), digest="c17370fbac4c5947"),
    Internal("torch._inductor.config.fallback_random", ("recbole_umi.model.base",), "write",
             "compile_step: inductor draws random numbers as eager torch does (same negatives and dropout)"),
    Internal("torch._inductor.codegen.cpp.LoopNest.max_parallel_depth", ("recbole_umi.towers.inductor_fix",), "patch",
             "compile_step: wrapped so that a vectorized loop narrower than a vector counts one step, not none "
             "(pytorch/pytorch#190928): no thread team forked per row", digest="b739a88b3bf84105"),
)
