"""The adapter every plugin model is: a RecBole ``SequentialRecommender`` around a tower."""

from __future__ import annotations

import types
from logging import getLogger

import torch
from recbole.model.abstract_recommender import SequentialRecommender
from recbole.model.layers import FeedForward as RecBoleFeedForward
from recbole.model.sequential_recommender.sasrec import SASRec
from recbole.model.sequential_recommender.sine import SINE
from recbole.utils import InputType

from recbole_umi.model.profile import data_schema
from recbole_umi.settings import Setting, SettingsError, window_stride
from recbole_umi.towers import ops
from recbole_umi.towers.base import UserTower
from recbole_umi.towers.layers import routing_overlap
from recbole_umi.towers.losses import MultiInterestLoss
from recbole_umi.towers.settings import ObjectiveSettings, ProfileSettings
from recbole_umi.towers.transformer import last_position_output

__all__ = ["MatchingRecommender", "MultiInterestRecommender", "ModelConfigError", "training_counts"]


def training_counts(dataset, n_items: int) -> torch.Tensor:
    """Each item's number of training targets: under the user-split protocol every target
    the loss counts (``target_counts``: a training user's first item is never a target,
    ``max_samples_per_user`` caps a user's, and a window row counts each of its last
    ``window_stride`` positions), else the dataset's ``item_counter`` (RecBole's protocol:
    a row a target); row 0, the padding item, 0."""
    target_counts = getattr(dataset, "target_counts", None)
    if target_counts is not None:
        return target_counts[:n_items].to(torch.float32)
    counts = torch.zeros(n_items)
    for item, count in dataset.item_counter.items():
        counts[item] = count
    return counts

# Settings every plugin model's run reads besides its tower's and the objective's: the
# evaluation's retrieval (recbole_umi.evaluation) and the profile noise (recbole_umi.data).
RUN_KEYS = ("retrieval", "retrieval_nlist", "retrieval_nprobe", "retrieval_hnsw_m", "retrieval_ef_construction",
            "retrieval_ef_search", "profile_noise", "profile_noise_seed", "compile_step")


class ModelConfigError(SettingsError):
    """Settings that do not fit a model (n_interests other than 1 for a single-interest
    model, RecBole's negative sampling, ...)."""


class MatchingRecommender(SequentialRecommender):
    """A candidate-matching model for RecBole: a user tower (``tower_class``, from
    :mod:`recbole_umi.towers`) scored by max over its K interests (Eq 1; K = 1 for the
    single-interest models), trained with the shared objective.

    The adapter builds the tower from RecBole's config (its settings object) and dataset
    (its :class:`~recbole_umi.towers.schema.DataSchema`) and supplies what RecBole calls:
    ``calculate_loss``, ``predict``, ``full_sort_predict``. The tower's modules are
    registered on the adapter itself, without a prefix (``item_embedding.weight``, not
    ``tower.item_embedding.weight``), so that state-dict keys are those of checkpoints and
    exports written before the towers had their own package; the tower object is
    ``self.tower``, and attributes the adapter lacks are the tower's (``model.use_ir``).
    """

    input_type = InputType.POINTWISE
    tower_class: type[UserTower] = UserTower
    uses_profile = True  # each subclass: its tower class's (may read one); an instance: whether it does
    routes_items = True
    reads_history = True
    # The config keys naming the interaction fields whose history lists the model reads: the
    # user-split protocol builds only these (recbole_umi.data.protocol).
    history_fields: tuple[str, ...] = ("ITEM_ID_FIELD",)
    # The boolean settings whose variants compare and tune may name by suffix (MIND+HN):
    # the ones that change what this model computes.
    variant_settings: tuple[str, ...] = ("harder_negatives",)
    # Narrower ranges than recbole_umi.settings gives, checked when the config is built.
    setting_restrictions: dict[str, Setting] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        tower = cls.tower_class
        cls.uses_profile, cls.routes_items, cls.reads_history = tower.uses_profile, tower.routes_items, tower.reads_history
        cls.setting_restrictions = {**tower.settings_class.restrictions, **cls.__dict__.get("setting_restrictions", {})}

    @classmethod
    def setting_keys(cls) -> tuple[str, ...]:
        """Every config key the model reads (validated for it when the config is built)."""
        keys = [*cls.tower_class.settings_class.keys(), *ObjectiveSettings.keys(), *RUN_KEYS]
        if cls.tower_class.uses_profile:
            keys += ProfileSettings.keys()
        return tuple(dict.fromkeys(keys))

    @classmethod
    def check_settings(cls, config) -> None:
        """The settings objects the model is built from, made from ``config`` and dropped: a
        missing or empty key (``profile_fields`` of a profile model) fails when the config
        is built, before any data loads, not when the model is."""
        cls.profile_settings(config, cls.tower_class.settings_class.from_config(config))
        ObjectiveSettings.from_config(config)

    @classmethod
    def profile_settings(cls, config, tower_settings) -> ProfileSettings | None:
        """The profile's settings where the tower reads the profile with ``tower_settings``
        (:meth:`~recbole_umi.towers.base.UserTower.reads_profile`), else None."""
        return ProfileSettings.from_config(config) if cls.tower_class.reads_profile(tower_settings) else None

    @classmethod
    def reads_profile(cls, config) -> bool:
        """Whether the model built from ``config`` reads the user profile."""
        return cls.tower_class.reads_profile(cls.tower_class.settings_class.from_config(config))

    @classmethod
    def answers_empty_history(cls, config) -> bool:
        """Whether the model built from ``config`` has interests for a user without history
        (:meth:`~recbole_umi.towers.base.UserTower.answers_empty_history`)."""
        return cls.tower_class.answers_empty_history(cls.tower_class.settings_class.from_config(config))

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        neg_args = config["train_neg_sample_args"]
        if neg_args is not None and neg_args.get("distribution", "none") != "none":
            raise ModelConfigError(
                "train_neg_sample_args", neg_args,
                f"must be ~ (None): {config['model']} samples its own negatives (n_negatives, negative_sampler)",
            )
        tower_settings = self.tower_class.settings_class.from_config(config)
        schema = data_schema(config, dataset, self.profile_settings(config, tower_settings))
        tower = self.tower_class(tower_settings, schema)
        object.__setattr__(self, "tower", tower)  # not a submodule: its modules are registered below
        self.uses_profile = tower.uses_profile  # this instance's, which its settings decide
        if tower._parameters or tower._buffers:
            raise TypeError(f"{type(tower).__name__} keeps tensors of its own; only its modules are registered")
        for name, module in tower.named_children():
            self._modules[name] = module  # add_module would find the name through __getattr__
        objective = ObjectiveSettings.from_config(config)
        counts = None
        if objective.negative_sampler == "popularity":
            counts = training_counts(dataset, self.n_items)
        self.loss_fct = MultiInterestLoss.from_settings(objective, self.n_items, counts, tower.readout_power)
        self.routing_regularization = objective.routing_regularization
        if self.routing_regularization > 0 and not tower.routes_items:
            raise ModelConfigError(
                "routing_regularization", self.routing_regularization,
                f"must be 0: {config['model']} routes no items to interests",
            )
        # train_sampling: windows (checked with the config): a row's last window_stride history
        # positions (every one without a stride) predict the item after each
        self.train_windows = config["train_sampling"] == "windows"
        self.window_stride = window_stride(config) if self.train_windows else None
        # compile_step: the training loss through torch.compile (None: eager)
        self._compiled_loss = CompiledLoss(self.loss, self) if config["compile_step"] else None

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)  # parameters, buffers, modules
        except AttributeError:
            tower = self.__dict__.get("tower")
            if tower is None:
                raise
            return getattr(tower, name)

    def train(self, mode: bool = True):
        super().train(mode)
        self.tower.train(mode)  # its modules are ours; its own flag follows
        return self

    def interests_and_routing(self, interaction) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The tower's interests ``B x K x d`` and routing ``B x T x K`` (None without routing)."""
        return self.tower.interests_and_routing(interaction)

    def forward(self, interaction) -> torch.Tensor:
        """The K interest vectors O_u of each user in the batch, ``B x K x d``."""
        return self.tower(interaction)

    def item_embeddings(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """Item vectors: of every item, ``n_items x d`` (row 0 the padding item), or of ``items``."""
        return self.tower.item_embeddings(items)

    def calculate_loss(self, interaction) -> torch.Tensor:
        """The training loss of a batch: :meth:`loss`, compiled with ``compile_step``."""
        if self._compiled_loss is None:
            return self.loss(interaction)
        return self._compiled_loss(interaction)

    def loss(self, interaction) -> torch.Tensor:
        """The training loss of a batch (rows, or windows with ``train_sampling: windows``)."""
        if self.train_windows:
            return self.window_loss(interaction)
        interests, routing = self.tower.interests_and_routing(interaction)
        # The loss asks for the vectors of its candidates only (all items for full_softmax).
        loss = self.loss_fct(interests, interaction[self.POS_ITEM_ID], self.tower.item_embeddings)
        if self.routing_regularization > 0:  # against routing collapse: docs/design.md
            loss = loss + self.routing_regularization * routing_overlap(routing)
        return loss

    def window_loss(self, interaction) -> torch.Tensor:
        """The loss of the last ``window_stride`` positions of each row's history (every
        position without a stride; ``train_sampling: windows``): position j's interests (the
        prefix up to j, :meth:`UserTower.prefix_interests`) against the item after it, the
        next history item or, at the last position, the row's target; averaged over every such
        position of the batch, as over rows otherwise."""
        history = interaction[self.ITEM_SEQ]  # B x T, left-aligned
        lengths = interaction[self.ITEM_SEQ_LEN]
        positions = torch.arange(history.size(1), device=history.device)
        targets = torch.cat([history[:, 1:], history.new_zeros(len(history), 1)], dim=1)
        last = positions.unsqueeze(0) == (lengths - 1).unsqueeze(1)  # B x T
        targets = torch.where(last, interaction[self.POS_ITEM_ID].unsqueeze(1), targets)
        counted = (positions.unsqueeze(0) < lengths.unsqueeze(1)) & (
            positions.unsqueeze(0) >= (lengths - self.window_stride).unsqueeze(1))
        interests = self.tower.prefix_interests(interaction)[counted]  # N x K x d
        return self.loss_fct(interests, targets[counted], self.tower.item_embeddings)

    def predict(self, interaction) -> torch.Tensor:
        """``B`` scores ``max_k o_k . e_t`` of each row's item."""
        return self.tower.score_items(self.tower(interaction), interaction[self.ITEM_ID])

    def full_sort_predict(self, interaction) -> torch.Tensor:
        """``B x n_items`` scores ``max_k o_k . e_t`` of every item. (Evaluation through a
        faiss index instead, ``retrieval``, is the trainer's: recbole_umi.evaluation.)"""
        return self.tower.score_all_items(self.tower(interaction))


# The name this base had when every plugin model was multi-interest; kept for users' imports.
MultiInterestRecommender = MatchingRecommender


class CompiledLoss:
    """A model's training loss through ``torch.compile`` (``compile_step``): compiled at its
    first call in training mode, then run compiled there; eager in evaluation mode, and from
    the first call on where compiling fails (no C++ compiler, a backend failure), with a
    warning. An error of the loss itself is raised as the eager loss raises it.

    Args:
        loss: the eager loss, a function of a training batch.
        model: the module it belongs to (its ``training`` flag says which way to run).
    """

    def __init__(self, loss, model: torch.nn.Module):
        self.loss = loss
        self.model = model
        self.compiled = None  # None: not compiled yet; False: compiling failed, eager from then on

    @property
    def ran_compiled(self) -> bool:
        """Whether the loss has been compiled and not given up."""
        return self.compiled not in (None, False)

    def __call__(self, *args, **kwargs) -> torch.Tensor:
        if self.compiled is False or not self.model.training:
            return self.loss(*args, **kwargs)
        if self.compiled is None:
            on_cpu = all(parameter.device.type == "cpu" for parameter in self.model.parameters())
            self.compiled = compiled(self.loss, cpp_wrapper=on_cpu)
        try:
            return self.compiled(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - the eager loss below raises again if the loss itself is wrong
            if not _is_compile_failure(error):
                raise
            getLogger(__name__).warning(f"compile_step: compiling the loss failed ({type(error).__name__}: "
                                        f"{str(error).strip().splitlines()[0][:200]}); training without it")
            self.compiled = False
            return self.loss(*args, **kwargs)


def fast_cpu_modules(module: torch.nn.Module) -> int:
    """Gives the modules inside ``module`` the ways of :mod:`recbole_umi.towers.ops` on the
    CPU, for RecBole's own models under ``compile_step`` (:func:`compile_step`), as the
    plugin's encoders have them:
    every ``nn.Dropout`` (that class itself, not its subclasses) is replaced by an
    ``ops.Dropout`` of the same ``p`` and ``inplace`` (its masks drawn from 16-bit draws on
    the CPU), every ``nn.Linear`` and ``nn.Tanh`` becomes an ``ops.Linear`` and ``ops.Tanh``
    (the same parameters and state dict), RecBole's GELU, where a transformer's
    feed-forward layer uses it, ``ops.gelu``, and a sequential model's causal attention mask,
    where it is RecBole's ``get_attention_mask``, ``ops.causal_attention_mask`` (the same
    mask; compiled on the CPU computed whole, not inside the attention's softmax, per head and
    row), RecBole's SINE its forward with its interests' maps in one product
    (:func:`_sine_forward`) and RecBole's SASRec its forward with the last layer computed at
    the one position it returns (:func:`_sasrec_forward`). Returns how many it changed."""
    nn = torch.nn
    changed = 0
    for parent in list(module.modules()):
        if isinstance(parent, SequentialRecommender) and "get_attention_mask" not in parent.__dict__ \
                and type(parent).get_attention_mask is SequentialRecommender.get_attention_mask:
            parent.get_attention_mask = _plugin_attention_mask
            changed += 1
        if type(parent) is SINE and "forward" not in parent.__dict__:
            parent.forward = types.MethodType(_sine_forward, parent)
            changed += 1
        if type(parent) is SASRec and "forward" not in parent.__dict__:
            parent.forward = types.MethodType(_sasrec_forward, parent)
            changed += 1
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                setattr(parent, name, ops.Dropout(child.p, child.inplace))
            elif type(child) is nn.Linear:
                child.__class__ = ops.Linear
            elif type(child) is nn.Tanh:
                child.__class__ = ops.Tanh
            else:
                continue
            changed += 1
        act = getattr(parent, "intermediate_act_fn", None)
        if isinstance(parent, RecBoleFeedForward) and getattr(act, "__func__", None) is RecBoleFeedForward.gelu:
            parent.intermediate_act_fn = ops.gelu
            changed += 1
    return changed


def _plugin_attention_mask(item_seq: torch.Tensor, bidirectional: bool = False) -> torch.Tensor:
    """RecBole's ``SequentialRecommender.get_attention_mask`` (which reads nothing of its
    model), its causal mask through :func:`ops.causal_attention_mask`. A module-level function,
    so that a model holding it copies as before (no closure over the model)."""
    if bidirectional:
        return SequentialRecommender.get_attention_mask(None, item_seq, bidirectional=True)
    return ops.causal_attention_mask(item_seq)


def _sine_forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
    """RecBole 1.2.1's ``SINE.forward`` (``self`` a SINE) but for its attention weighting's
    ``a_k``, every interest's map of every history position: one ``B*T x D`` by ``D x K*D``
    product where RecBole multiplies ``K`` copies of the history by ``B`` copies of the maps in
    a batched product (whose backward sums ``B`` copies of the maps' gradient): the same
    values (bit for bit in a check at B = 1024, T = 50, D = 64, K = 3), 1.9x faster forward
    and backward eager there at 1 thread (docs/benchmarks.md, "RecBole's SINE's interest maps
    in one product"); and, compiled on the CPU, its three tanh from one exponential
    (``ops.tanh``: the same values up to 2e-7; "SINE's tanh from one exponential"). Every
    other line computes as RecBole's."""
    functional = torch.nn.functional
    x_u = self.item_embedding(item_seq).to(self.device)  # B x T x D
    # concept activation
    x = torch.matmul(ops.tanh(torch.matmul(x_u, self.w1)), self.w2)
    a = functional.softmax(x, dim=1)
    z_u = torch.matmul(a.unsqueeze(2).transpose(1, 2), x_u).transpose(1, 2)
    s_u = torch.matmul(self.C.weight, z_u).squeeze(2)
    idx = s_u.argsort(1)[:, -self.k:]
    s_u_idx = s_u.sort(1)[0][:, -self.k:]
    c_u = self.C(idx)
    sigs = torch.sigmoid(s_u_idx.unsqueeze(2).repeat(1, 1, self.embedding_size))
    C_u = c_u.mul(sigs)
    # intention assignment
    w3_x_u_norm = functional.normalize(x_u.matmul(self.w3), p=2, dim=2)
    C_u_norm = self.ln2(C_u)
    P_k_t = torch.bmm(w3_x_u_norm, C_u_norm.transpose(1, 2))
    P_k_t_b = functional.softmax(P_k_t, dim=2)
    P_k_t_b_t = P_k_t_b.transpose(1, 2)
    # attention weighting: a_k[b, k, t] = x_u[b, t] @ w_k_1[k], as one product
    batch_size, length, size = x_u.shape
    a_k = (x_u.reshape(-1, size) @ self.w_k_1.permute(1, 0, 2).reshape(size, self.k * size)) \
        .view(batch_size, length, self.k, size).permute(0, 2, 1, 3)
    P_t_k = functional.softmax(
        ops.tanh(a_k).matmul(self.w_k_2.reshape(self.k, self.embedding_size, 1)).squeeze(3), dim=2)
    # interest embedding generation
    mul_p = P_k_t_b_t.mul(P_t_k)
    x_u_re = x_u.unsqueeze(1).repeat(1, self.k, 1, 1)
    delta_k = x_u_re.mul(mul_p.unsqueeze(3)).sum(2)
    delta_k = functional.normalize(delta_k, p=2, dim=2)
    # prototype sequence
    x_u_bar = P_k_t_b.matmul(C_u)
    C_apt = functional.softmax(ops.tanh(x_u_bar.matmul(self.w3)).matmul(self.w4), dim=1)
    C_apt = C_apt.reshape(-1, 1, self.max_seq_length).matmul(x_u_bar)
    C_apt = self.ln4(C_apt)
    # aggregation weight
    e_k = delta_k.bmm(C_apt.reshape(-1, self.embedding_size, 1)) / self.tau
    e_k_u = functional.softmax(e_k.squeeze(2), dim=1)
    return e_k_u.unsqueeze(2).mul(delta_k).sum(dim=1)


def _sasrec_forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
    """RecBole 1.2.1's ``SASRec.forward`` (``self`` a SASRec) with its last transformer layer
    computed only at the position it returns, each row's last item
    (:func:`~recbole_umi.towers.transformer.last_position_output`, as the plugin's encoder
    does). RecBole computes the last layer at every position and keeps one
    (``gather_indexes``): the same values to float rounding, at two layers about 40% of the
    step's arithmetic left out at T = 50, 30% at T = 10 (docs/benchmarks.md, "RecBole's
    SASRec's last layer at one position"). In training the last layer's dropouts draw masks
    for the one position (the same distribution, other masks from a seed than RecBole's
    forward with the same modules). Every other line computes as RecBole's; without layers,
    RecBole's own forward."""
    if len(self.trm_encoder.layer) == 0:
        return SASRec.forward(self, item_seq, item_seq_len)
    position_ids = torch.arange(item_seq.size(1), dtype=torch.long, device=item_seq.device)
    position_ids = position_ids.unsqueeze(0).expand_as(item_seq)
    input_emb = self.item_embedding(item_seq) + self.position_embedding(position_ids)
    hidden = self.dropout(self.LayerNorm(input_emb))
    return last_position_output(self.trm_encoder.layer, hidden, self.get_attention_mask(item_seq), item_seq_len)


def compile_step(model: torch.nn.Module, config) -> None:
    """``compile_step`` for RecBole's own sequential models: their ``calculate_loss``, which
    RecBole's trainer calls, replaced on the instance by the same loss through
    :class:`CompiledLoss`, and their modules given the plugin's ways on the CPU, as its own
    encoders have them (:func:`fast_cpu_modules`): dropout masks from
    16-bit draws (the same distribution, ``p`` rounded to a multiple of 2^-16; other masks
    than RecBole's from a seed), linear maps by oneDNN, torch's GELU kernels and tanh from
    one exponential (the same values up to float rounding), which made the compiled steps of
    the plugin's transformer encoders faster at 1 thread (docs/benchmarks.md, "Dropout masks
    from uniform draws" and "oneDNN maps, GELU and tanh"). The plugin's models compile their own
    (:meth:`MatchingRecommender.calculate_loss`). RecBole's other models are refused: some of
    their trainers compute the loss through other methods (MKR, KGAT, RecVAE's encoder
    steps), which this would leave eager, and none was measured."""
    if not config["compile_step"] or isinstance(model, MatchingRecommender):
        return
    if not isinstance(model, SequentialRecommender):
        raise SettingsError("compile_step", config["compile_step"],
                            f"must be off for {config['model']}: of RecBole's own models only the sequential ones "
                            f"compile their training loss")
    fast_cpu_modules(model)
    model.calculate_loss = CompiledLoss(model.calculate_loss, model)


def compiled_loss(model: torch.nn.Module) -> CompiledLoss | None:
    """The :class:`CompiledLoss` a model trains with under ``compile_step`` (None without it)."""
    if isinstance(model, MatchingRecommender):
        return model._compiled_loss
    loss = model.__dict__.get("calculate_loss")
    return loss if isinstance(loss, CompiledLoss) else None


def compiled(function, cpp_wrapper: bool = False):
    """``function`` through ``torch.compile`` (inductor) for ``compile_step``. Inductor draws
    its random numbers as eager torch does (``fallback_random``, a process-wide inductor
    setting), so a compiled step samples the same negatives and dropout masks as an eager one
    and a resumed run repeats an uninterrupted one. Dynamo keeps what it compiled per code
    object, shared by every model of the process, and runs eager, silently but for a warning,
    after 8 recompilations (``recompile_limit``): a search's or a comparison's next model
    would soon train uncompiled. So each model's compiled loss starts from an empty cache;
    the models before it evaluate eagerly and do not need theirs. With ``cpp_wrapper`` (what
    :class:`CompiledLoss` asks for on the CPU) the compiled graphs call their kernels from C++
    instead of Python: at 1 thread every compiled model's step faster or level, MIND's by
    10-25% (docs/benchmarks.md, "Kernels called from C++"); not measured on a GPU. Inductor's
    CPU kernels are threaded as :mod:`recbole_umi.towers.inductor_fix` mends them (from the
    first compiled model on, for every ``torch.compile`` of the process)."""
    import torch._dynamo
    import torch._inductor.config as inductor_config

    from recbole_umi.towers.inductor_fix import fix_parallel_depth

    inductor_config.fallback_random = True
    fix_parallel_depth()
    torch._dynamo.reset()
    return torch.compile(function, dynamic=None, options={"cpp_wrapper": True} if cpp_wrapper else None)


def _is_compile_failure(error: BaseException) -> bool:
    """Whether ``error`` came from compiling the forward (no C++ compiler, a backend failure),
    not from the loss itself. (The backward is compiled at its first call, in the trainer's
    ``backward()``: a failure there ends the run.)"""
    import torch._dynamo.exc as dynamo_errors
    import torch._inductor.exc as inductor_errors

    names = ((dynamo_errors, "BackendCompilerFailed"), (dynamo_errors, "InternalTorchDynamoError"),
             (inductor_errors, "CppCompileError"), (inductor_errors, "InductorError"),
             (inductor_errors, "InvalidCxxCompiler"))  # some are missing from older torch
    kinds = tuple(kind for module, name in names if isinstance(kind := getattr(module, name, None), type))
    return isinstance(error, kinds)
