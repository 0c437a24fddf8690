"""Per-user metrics from RecBole's own evaluation, for paired significance tests.

RecBole's evaluator averages every top-k metric over users. :class:`PerUserEvaluator`
wraps it and keeps, from the evaluation it last ran, each user's value of every top-k
metric (RecBole's metric classes compute them; the mean over users is RecBole's figure),
so that two models can be compared user by user without retraining.

:func:`interest_diagnostics` measures how distinct a multi-interest model's interests are
on the evaluated users (routing collapse makes them near-duplicates).

:class:`CategoryCoverage` is a metric RecBole's evaluator computes like its own
(``metrics: [..., CategoryCoverage]`` with ``category_field`` naming an item field of
categories): the share of all categories that a user's top N covers, the paper's online
diversity metric, averaged over users.
"""

from __future__ import annotations

from recbole_umi import compat

compat.apply()  # before anything imports RecBole

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from recbole.evaluator import register  # noqa: E402
from recbole.evaluator.collector import Collector  # noqa: E402
from recbole.evaluator.base_metric import AbstractMetric, TopkMetric  # noqa: E402
from recbole.evaluator.register import metrics_dict  # noqa: E402
from recbole.utils import EvaluatorType  # noqa: E402

from logging import getLogger  # noqa: E402

from recbole_umi.item_file import item_categories, item_file_columns  # noqa: E402
from recbole_umi.metrics import category_coverage  # noqa: E402
from recbole_umi.model import MatchingRecommender  # noqa: E402
from recbole_umi.settings import SettingsError, check_retrieval_evaluation  # noqa: E402
from recbole_umi.towers.layers import RoutingLogits, mean_pairwise_cosine, routing_overlap  # noqa: E402

__all__ = ["PerUserEvaluator", "per_user_topk", "evaluated_users", "interest_diagnostics", "CategoryCoverage",
           "register_metrics", "attach_item_categories", "IndexScorer", "IndexedEvaluation"]


def per_user_topk(struct, config) -> dict[str, np.ndarray]:
    """``{"recall@50": values, ...}``: every configured top-k metric at every cut-off, one
    value per evaluated user (in evaluation order), from RecBole's collected ``struct``."""
    values = {}
    for name in config["metrics"]:
        metric_class = metrics_dict[name.lower()]
        if not issubclass(metric_class, TopkMetric):
            continue
        metric = metric_class(config)
        pos_index, pos_len = metric.used_info(struct)
        wants_len = metric_class.metric_info.__code__.co_argcount == 3  # (self, pos_index, pos_len)
        per_user = metric.metric_info(pos_index, pos_len) if wants_len else metric.metric_info(pos_index)
        for k in config["topk"]:
            values[f"{name.lower()}@{k}"] = per_user[:, k - 1]
    return values


def evaluated_users(eval_data) -> list[str]:
    """The original ids of the users a full-sort loader evaluates, in evaluation order."""
    dataset = eval_data._dataset
    ids = dataset.inter_feat[dataset.uid_field] if eval_data.is_sequential else eval_data.uid_list
    return [str(token) for token in dataset.id2token(dataset.uid_field, ids.numpy())]


class PerUserEvaluator:
    """RecBole's ``Evaluator`` that also keeps the per-user values of its last evaluation
    (``last``, see :func:`per_user_topk`); everything else is the wrapped evaluator's."""

    def __init__(self, evaluator, config):
        self.evaluator = evaluator
        self.config = config
        self.last: dict[str, np.ndarray] | None = None

    def evaluate(self, struct):
        self.last = per_user_topk(struct, self.config)
        return self.evaluator.evaluate(struct)

    def __getattr__(self, name):
        return getattr(self.evaluator, name)


@torch.no_grad()
def interest_diagnostics(model, eval_data) -> dict | None:
    """How distinct a model's K interests are, over the users of ``eval_data``:

    - ``interest_cosine``: the mean cosine between two of a user's interest vectors (over
      users and pairs k != l); near 1, the interests are near-duplicates;
    - ``routing_overlap``: :func:`recbole_umi.towers.layers.routing_overlap` of the routing;
    - ``routing_share``: the share of a user's history items whose largest routing weight
      is on an interest, the interests sorted from the largest share down, averaged over
      users (``[1, 0, 0]``: every item goes to one interest);
    - ``routing_by_position``: for a model whose routing starts from random initial logits
      (UMI, MIND: in evaluation one fixed draw per history position,
      :class:`recbole_umi.towers.layers.RoutingLogits`), the share of a user's history items
      whose largest routing weight is on the interest their position's draw favours,
      averaged over users. Near 1, the routing follows the draw, not the items: it splits
      a history by position, whatever the items are.

    None for RecBole's models and models with one interest; the routing entries are None
    for a model without routing, ``routing_by_position`` for one without a random draw
    (ComiRec-DR's logits start at zero).
    """
    if not isinstance(model, MatchingRecommender) or model.n_interests < 2:
        return None
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    k = model.n_interests
    initial = getattr(model, "routing_logits", None)
    cosine_sum = overlap_sum = position_sum = 0.0
    share_sum = torch.zeros(k)
    favoured = None
    users = 0
    routing = None
    try:  # the model's training mode comes back whatever happens
        for batch in eval_data:
            interaction = batch[0].to(device)
            interests, routing = model.interests_and_routing(interaction)
            cosine_sum += mean_pairwise_cosine(interests).sum().item()
            if routing is not None:
                overlap_sum += routing_overlap(routing).item() * len(interests)
                real = (interaction[model.ITEM_SEQ] != 0).float()  # B x T
                lengths = real.sum(dim=1, keepdim=True).clamp(min=1)  # B x 1
                top = routing.argmax(dim=-1)  # B x T: each item's largest routing weight
                winners = F.one_hot(top, k).float() * real.unsqueeze(-1)  # B x T x K
                shares = winners.sum(dim=1) / lengths
                share_sum += shares.sort(dim=1, descending=True).values.sum(dim=0).cpu()
                favoured = initial.favoured(routing.size(1)) if isinstance(initial, RoutingLogits) else None
                if favoured is not None:
                    follows = (top == favoured).float() * real  # B x T
                    position_sum += (follows.sum(dim=1, keepdim=True) / lengths).sum().item()
            users += len(interests)
    finally:
        model.train(was_training)
    has_routing = routing is not None
    return {
        "interest_cosine": cosine_sum / users,
        "routing_overlap": overlap_sum / users if has_routing else None,
        "routing_share": (share_sum / users).tolist() if has_routing else None,
        "routing_by_position": position_sum / users if favoured is not None else None,
    }


class CategoryCoverage(AbstractMetric):
    """``categorycoverage@N``: the share of all item categories that a user's top N covers
    (an item may have several), averaged over the users."""

    metric_type = EvaluatorType.RANKING
    metric_need = ["rec.items", "data.item_categories"]

    def __init__(self, config):
        super().__init__(config)
        self.topk = config["topk"]

    def calculate_metric(self, dataobject):
        items = dataobject.get("rec.items").long().cpu().numpy()  # users x max(topk), best first
        categories = dataobject.get("data.item_categories").cpu().numpy()  # n_items x C
        return {f"categorycoverage@{k}": round(float(category_coverage(items[:, :k], categories).mean()), self.decimal_place)
                for k in self.topk}


class IndexScorer:
    """Evaluation scores through a faiss index of the model's current item vectors: each
    user's top ``n`` items of a search of every interest (:mod:`recbole_umi.retrieval`) get
    their score ``max_k o_k . e_t``, every other item ``-inf``, so that RecBole's evaluator
    ranks what a deployment would return. Built from the weights as they are: make a new one
    when they change (:class:`IndexedEvaluation` makes one per evaluation).

    Args:
        model: a plugin model (its ``forward`` gives ``B x K x d`` interests).
        spec: the index (:class:`recbole_umi.retrieval.IndexSpec`).
        n: items searched per user (``max(topk)``).
        mode: the ``retrieval`` setting, for the warning.

    Shapes: ``scorer(interaction)`` -> ``B x n_items``.
    """

    def __init__(self, model, spec, n: int, mode: str = "faiss"):
        from recbole_umi.retrieval import InterestRetriever  # faiss only where it is used

        self.model, self.n, self.mode = model, n, mode
        self.retriever = InterestRetriever(model.item_embeddings().detach(), spec)
        self.warned = False  # of users with fewer than n items found

    @classmethod
    def from_config(cls, config, model) -> "IndexScorer | None":
        """The scorer the ``retrieval`` settings ask for; None for ``full_sort`` (and for
        RecBole's models, which have no such setting)."""
        mode = config["retrieval"] if "retrieval" in config else None
        if mode in (None, "full_sort"):
            return None
        from recbole_umi.retrieval import IndexSpec

        return cls(model, IndexSpec.from_config(config), max(config["topk"]), mode)

    def __call__(self, interaction, exclude=None) -> torch.Tensor:
        """Scores of a batch; ``exclude``: per user, the items the index must not return (the
        items the evaluation sets to ``-inf``, so that the top n is filled from the rest)."""
        interests = self.model(interaction)
        scores, item_ids = self.retriever.search(interests, self.n, exclude=exclude)
        found = torch.from_numpy(item_ids >= 0)
        if not found.all() and not self.warned:
            self.warned = True
            why = {"faiss_ivf": "raise retrieval_nprobe", "faiss_hnsw": "raise retrieval_ef_search"}.get(
                self.mode, "fewer items are left once the history is excluded")
            getLogger().warning(
                f"retrieval {self.mode}: {int((~found).any(dim=1).sum())} of the first batch's {len(found)} users got "
                f"fewer than {self.n} items from the index ({why}); their empty places count as misses"
            )
        dense = torch.full((len(interests), self.model.n_items), -torch.inf, device=interests.device)
        rows = torch.arange(len(interests)).unsqueeze(1).expand_as(found)
        dense[rows[found], torch.from_numpy(item_ids)[found]] = torch.from_numpy(scores)[found].to(dense)
        return dense


class _Without:
    """A collector's register that does not need ``resource`` (collected by the caller)."""

    def __init__(self, register, resource: str):
        self.register, self.resource = register, resource

    def need(self, key: str) -> bool:
        return key != self.resource and self.register.need(key)


class RankedOnlyCollector(Collector):
    """RecBole's ``Collector`` whose top-N hits (``rec.topk``, every top-k metric's input)
    count ranked items only. A place of the top N scored ``-inf`` holds no ranked item: the
    index returned fewer than N items (IVF, HNSW), or fewer than N were left once the padding
    item and the excluded history were set to ``-inf``. RecBole's ``topk`` fills such places
    with arbitrary ``-inf`` items and counted a target among them as a hit; here it is a miss.
    (``rec.items``, the lists that ItemCoverage and CategoryCoverage read, keep RecBole's
    fillers: other metrics index their items.)"""

    def eval_batch_collect(self, scores_tensor, interaction, positive_u, positive_i):
        if self.register.need("rec.topk"):
            values, top = torch.topk(scores_tensor, max(self.topk), dim=-1)  # n_users x N
            targets = torch.zeros_like(scores_tensor, dtype=torch.int)
            targets[positive_u, positive_i] = 1
            hits = targets.gather(1, top) * torch.isfinite(values)
            self.data_struct.update_tensor("rec.topk", torch.cat((hits, targets.sum(dim=1, keepdim=True)), dim=1))
        register, self.register = self.register, _Without(self.register, "rec.topk")
        try:  # RecBole's own for every other resource
            super().eval_batch_collect(scores_tensor, interaction, positive_u, positive_i)
        finally:
            self.register = register


class IndexedEvaluation:
    """Trainer mixin: with ``retrieval`` other than ``full_sort``, every evaluation (each
    validation and test pass, when the weights may have changed) builds an
    :class:`IndexScorer` from the model's current weights (``index_scorer``) and ranks its
    users' top N through it instead of the model's ``full_sort_predict``. Every evaluation,
    full sort too, collects its hits with :class:`RankedOnlyCollector`."""

    index_scorer: IndexScorer | None = None

    def __init__(self, config, model):
        super().__init__(config, model)
        self.eval_collector = RankedOnlyCollector(config)

    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        # a mixin placed after the one that loads the best weights: these are the weights evaluated
        if eval_data:
            check_retrieval_evaluation(self.config)  # a sampled evaluation would score without the index
        self.index_scorer = IndexScorer.from_config(self.config, self.model) if eval_data else None
        return super().evaluate(eval_data, load_best_model=load_best_model, model_file=model_file,
                                show_progress=show_progress)

    def _full_sort_batch_eval(self, batched_data):
        if self.index_scorer is None:
            return super()._full_sort_batch_eval(batched_data)
        interaction, history_index, positive_u, positive_i = batched_data
        exclude = None
        if history_index is not None:  # the index searches past these, as the full sort ranks past them
            rows, items = (index.cpu().numpy() for index in history_index)
            exclude = [items[rows == row] for row in range(len(interaction))]
        scores = self.index_scorer(interaction.to(self.device), exclude=exclude)
        scores[:, 0] = -np.inf  # as RecBole's own: the padding item and the history are never ranked
        if history_index is not None:
            scores[history_index] = -np.inf
        return interaction, scores, positive_u, positive_i


def register_metrics() -> None:
    """Make the plugin's metrics known to RecBole's config and evaluator (idempotent)."""
    name = CategoryCoverage.__name__.lower()
    register.metrics_dict[name] = CategoryCoverage
    register.metric_information[name] = CategoryCoverage.metric_need
    register.metric_types[name] = CategoryCoverage.metric_type


def attach_item_categories(collector, config, dataset) -> None:
    """Give RecBole's evaluation collector the items' categories (``category_field``, read
    from the ``.item`` file) when a metric needs them; SettingsError if the field is not there."""
    if not collector.register.need("data.item_categories"):
        return
    field = config["category_field"]
    columns = item_file_columns(config)
    if columns is None or field not in columns:
        raise SettingsError("category_field", field, f"must be a column of {config['dataset']}.item (categories of items)")
    tokens = [str(t) for t in dataset.field2id_token[dataset.iid_field]]
    _, multi_hot = item_categories(columns, config, tokens, field)
    collector.data_struct.set("data.item_categories", torch.from_numpy(multi_hot))


register_metrics()
