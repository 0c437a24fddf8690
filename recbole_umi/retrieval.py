"""Top-N retrieval for multi-interest users with faiss.

A user's score for an item is ``max_k o_k . e_t`` (Eq 1). Searching each of the K interest
vectors for its own top N and keeping, per item, the best of those scores gives the exact
top N under that score: an item in the user's true top N is also in the top N of the
interest that gives it its score (any item ranked above it by that interest also scores
higher for the user, and there are fewer than N of those). With an approximate index (IVF,
HNSW) each interest's search is approximate, and so is the merged list.

- :func:`build_index`: an inner-product index over item vectors, ``exact`` (flat), ``ivf``
  or ``hnsw``, its parameters an :class:`IndexSpec` (from the ``retrieval*`` settings);
  :func:`index_parameters`: those it was built with.
- :class:`InterestRetriever`: searches every interest of every user in one batched call,
  merges per user by best score (each item once), optionally leaves out items (a user's
  history) and re-ranks for diversity (:func:`diversify`).
- :func:`diversify`: ComiRec's controllable aggregation, greedy: the next item is the one
  with the best score minus ``lam`` times the number of items already chosen that share a
  category with it.

Item ids here are RecBole's internal ids (row ``i`` of a model's ``item_embeddings()``);
row 0, RecBole's padding item, is never indexed. A result slot that no item fills (an IVF
search whose probed cells hold fewer items than asked) has id ``-1`` and score ``-inf``.

Light on purpose: numpy and faiss; torch tensors are accepted but torch is not imported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import faiss
import numpy as np

from recbole_umi.metrics import category_coverage  # the coverage of a list; here for diversify's users
from recbole_umi.settings import RETRIEVAL_MODES, setting

__all__ = ["INDEX_KINDS", "RETRIEVAL_MODES", "IndexSpec", "auto_nlist", "build_index", "index_parameters",
           "InterestRetriever", "diversify", "category_coverage"]

INDEX_KINDS = ("exact", "ivf", "hnsw")

# faiss wants about 39 training points per IVF cell (it warns below that).
_POINTS_PER_CELL = 39


@dataclass(frozen=True)
class IndexSpec:
    """Which index and its parameters.

    Args:
        kind: ``exact`` (``IndexFlatIP``), ``ivf`` (``IndexIVFFlat``, inner product) or
            ``hnsw`` (``IndexHNSWFlat``, inner product).
        nlist: IVF cells; 0 chooses :func:`auto_nlist`.
        nprobe: IVF cells searched per query (more: slower, closer to exact).
        hnsw_m: HNSW links per node.
        ef_construction, ef_search: HNSW's candidate-list sizes when building and searching.
    """

    kind: str = "exact"
    nlist: int = 0
    nprobe: int = 16
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 128

    def __post_init__(self):
        if self.kind not in INDEX_KINDS:
            raise ValueError(f"index kind must be one of {INDEX_KINDS}, got {self.kind!r}")
        for name in ("nprobe", "hnsw_m", "ef_construction", "ef_search"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.nlist < 0:
            raise ValueError(f"nlist must be 0 (automatic) or more, got {self.nlist}")

    @classmethod
    def from_config(cls, config) -> "IndexSpec":
        """The index the ``retrieval`` settings describe (``faiss_ivf`` -> ``ivf``, ...)."""
        mode = setting(config, "retrieval")
        if mode == "full_sort":
            raise ValueError("retrieval is 'full_sort': no index to build")
        return cls(
            kind=mode.removeprefix("faiss_"),
            nlist=setting(config, "retrieval_nlist"),
            nprobe=setting(config, "retrieval_nprobe"),
            hnsw_m=setting(config, "retrieval_hnsw_m"),
            ef_construction=setting(config, "retrieval_ef_construction"),
            ef_search=setting(config, "retrieval_ef_search"),
        )


def index_parameters(index: faiss.Index) -> dict:
    """The parameters ``index`` was built and searches with (not those asked for: IVF's
    ``nlist`` 0 becomes :func:`auto_nlist`, its ``nprobe`` at most ``nlist``)."""
    if isinstance(index, faiss.IndexIVFFlat):
        return {"kind": "ivf", "nlist": int(index.nlist), "nprobe": int(index.nprobe)}
    if isinstance(index, faiss.IndexHNSWFlat):
        return {"kind": "hnsw", "hnsw_m": int(index.hnsw.nb_neighbors(1)),
                "ef_construction": int(index.hnsw.efConstruction), "ef_search": int(index.hnsw.efSearch)}
    if isinstance(index, faiss.IndexFlatIP):
        return {"kind": "exact"}
    raise TypeError(f"not an index build_index makes: {type(index).__name__}")


def auto_nlist(n_vectors: int) -> int:
    """IVF cells for ``n_vectors`` items: about ``4 sqrt(n)`` (faiss's rule of thumb), at
    most one cell per 39 items (so that k-means has the points faiss asks for)."""
    return max(1, min(round(4 * math.sqrt(n_vectors)), n_vectors // _POINTS_PER_CELL))


def _as_float32(array) -> np.ndarray:
    if hasattr(array, "detach"):  # a torch tensor
        array = array.detach().cpu().numpy()
    return np.ascontiguousarray(array, dtype=np.float32)


def build_index(vectors, spec: IndexSpec = IndexSpec()) -> faiss.Index:
    """An inner-product faiss index of ``vectors`` (``n x d``), row ``i`` with label ``i``."""
    vectors = _as_float32(vectors)
    n, d = vectors.shape
    if spec.kind == "exact":
        index = faiss.IndexFlatIP(d)
    elif spec.kind == "ivf":
        nlist = spec.nlist or auto_nlist(n)
        if nlist > n:
            raise ValueError(f"nlist ({nlist}) must be at most the number of items ({n})")
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.nprobe = min(spec.nprobe, nlist)
    else:
        index = faiss.IndexHNSWFlat(d, spec.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = spec.ef_construction
    index.add(vectors)
    if spec.kind == "hnsw":
        index.hnsw.efSearch = spec.ef_search
    return index


class InterestRetriever:
    """A faiss index over the item vectors, searched with the K interests of each user.

    Args:
        item_embeddings: ``n_items x d`` (a model's ``item_embeddings()``); row 0, RecBole's
            padding item, is left out of the index.
        spec: the index (default exact inner product).
        index: an index already built over rows ``1..n_items-1`` (e.g. read from an
            export), used instead of building one.

    Example::

        retriever = InterestRetriever(model.item_embeddings(), IndexSpec("ivf", nprobe=32))
        scores, item_ids = retriever.search(interests, n=50)   # B x 50 each
    """

    def __init__(self, item_embeddings=None, spec: IndexSpec = IndexSpec(), index: faiss.Index | None = None):
        if index is None:
            index = build_index(_as_float32(item_embeddings)[1:], spec)
        self.index = index

    @property
    def n_items(self) -> int:
        """Items in the index (the padding item not counted)."""
        return self.index.ntotal

    def search(self, interests, n: int, exclude=None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` items of each user: scores and RecBole item ids, both ``B x n``, best
        first; an unfilled slot is ``(-inf, -1)``.

        Args:
            interests: ``B x K x d`` interest vectors (``B x d`` for single-interest models).
            n: items per user, at most the number of indexed items.
            exclude: per user, item ids never to return (e.g. the user's history), or None.
        """
        vectors = _as_float32(interests)
        if vectors.ndim == 2:
            vectors = vectors[:, None, :]
        if vectors.ndim != 3:
            raise ValueError(f"interests must be B x K x d or B x d, got shape {vectors.shape}")
        batch, k, d = vectors.shape
        if not 1 <= n <= self.n_items:
            raise ValueError(f"n must be between 1 and the number of items ({self.n_items}), got {n}")
        if exclude is not None and len(exclude) != batch:
            raise ValueError(f"exclude must hold one list of items per user ({batch}), got {len(exclude)}")
        excluded = [np.unique(np.asarray(e, dtype=np.int64)) for e in exclude] if exclude is not None else None
        # each interest's own top (n + what may be excluded): enough to fill n after merging
        wanted = min(self.n_items, n + max((len(e) for e in excluded), default=0) if excluded else n)
        scores, rows = self.index.search(vectors.reshape(batch * k, d), wanted)
        scores, rows = scores.reshape(batch, k * wanted), rows.reshape(batch, k * wanted)
        item_ids = np.where(rows >= 0, rows + 1, -1)
        drop = rows < 0
        if excluded is not None:
            drop |= np.stack([np.isin(ids, e) for ids, e in zip(item_ids, excluded)]) if batch else drop
        return _merge(scores, item_ids, drop, n)


def _merge(scores: np.ndarray, item_ids: np.ndarray, drop: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row: each item once with its best score, the ``drop`` entries left out, the top n."""
    scores = np.where(drop, -np.inf, scores).astype(np.float32)
    # sort by item, then by score (best first) within an item: the first of a run is kept
    order = np.lexsort((-scores, item_ids), axis=1)
    by_item = np.take_along_axis(item_ids, order, axis=1)
    repeat = np.zeros_like(drop)
    repeat[:, 1:] = by_item[:, 1:] == by_item[:, :-1]
    duplicate = np.empty_like(repeat)
    np.put_along_axis(duplicate, order, repeat, axis=1)
    scores[duplicate] = -np.inf
    best = np.argsort(-scores, axis=1, kind="stable")[:, :n]
    top_scores = np.take_along_axis(scores, best, axis=1)
    top_items = np.where(np.isfinite(top_scores), np.take_along_axis(item_ids, best, axis=1), -1)
    return top_scores, top_items.astype(np.int64)


def diversify(scores, item_ids, categories, n: int, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Greedy re-ranking for diversity (ComiRec's controllable aggregation).

    From each user's candidates (``B x M``, e.g. a search's top M >= n), pick n items one at
    a time: the next is the candidate with the largest ``score - lam * c``, ``c`` the number
    of items already picked that share at least one category with it (ties: the better
    ranked candidate). ``lam = 0`` keeps the candidates' order.

    Args:
        scores, item_ids: candidates, as :meth:`InterestRetriever.search` returns them (an
            id of -1 is an empty slot, never picked).
        categories: ``n_items x C`` multi-hot (bool or 0/1) categories of every item id.
        n: items to pick per user (at most M).
        lam: the penalty per already picked item of a shared category, ``>= 0``.

    Returns:
        ``(scores, item_ids)``, ``B x n``: the picked items in picking order with their
        original scores; ``(-inf, -1)`` where fewer than n candidates were valid.
    """
    if lam < 0:
        raise ValueError(f"lam must be >= 0, got {lam}")
    scores, item_ids = np.asarray(scores, dtype=np.float64), np.asarray(item_ids)
    if not 1 <= n <= item_ids.shape[1]:
        raise ValueError(f"n must be between 1 and the number of candidates ({item_ids.shape[1]}), got {n}")
    categories = np.asarray(categories).astype(np.float32)
    picked_scores = np.full((len(item_ids), n), -np.inf, dtype=np.float32)
    picked_items = np.full((len(item_ids), n), -1, dtype=np.int64)
    for user, (user_scores, ids) in enumerate(zip(scores, item_ids)):
        valid = ids >= 0
        cats = categories[np.where(valid, ids, 0)]  # M x C
        shared = (cats @ cats.T) > 0  # candidates sharing a category
        penalty = np.zeros(len(ids))
        open_ = valid.copy()
        for slot in range(min(n, int(valid.sum()))):
            adjusted = np.where(open_, user_scores - lam * penalty, -np.inf)
            choice = int(np.argmax(adjusted))  # the first of equal values: the better ranked
            picked_scores[user, slot], picked_items[user, slot] = user_scores[choice], ids[choice]
            open_[choice] = False
            penalty += shared[choice]
    return picked_scores, picked_items
