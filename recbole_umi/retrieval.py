"""Top-N retrieval for multi-interest users with faiss.

A user's score for an item is ``max_k o_k . e_t`` (Eq 1). Searching each of the K interest
vectors for its own top N and keeping, per item, the best of those scores gives the exact
top N under that score: an item in the user's true top N is also in the top N of the
interest that gives it its score (any item ranked above it by that interest also scores
higher for the user, and there are fewer than N of those).
"""

from __future__ import annotations

import faiss
import numpy as np
import torch

__all__ = ["InterestRetriever"]


def _as_float32(array) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    return np.ascontiguousarray(array, dtype=np.float32)


class InterestRetriever:
    """Exact inner-product index over the item vectors, searched with K interests per user.

    Args:
        item_embeddings: ``n_items x d`` (a model's ``item_embeddings()``); row 0, RecBole's
            padding item, is left out of the index.
        index: optional faiss index to fill instead of ``IndexFlatIP`` (e.g. an IVF or HNSW
            index for large catalogues; the result is then approximate).

    Example::

        retriever = InterestRetriever(model.item_embeddings())
        scores, item_ids = retriever.search(model(interaction), n=50)   # B x 50 each
    """

    def __init__(self, item_embeddings, index: faiss.Index | None = None):
        items = _as_float32(item_embeddings)[1:]
        self.index = index if index is not None else faiss.IndexFlatIP(items.shape[1])
        if not self.index.is_trained:
            self.index.train(items)
        self.index.add(items)

    def search(self, interests, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` items of each user: scores and RecBole item ids, both ``B x n``.

        Args:
            interests: ``B x K x d`` interest vectors (``B x d`` for single-interest models).
        """
        vectors = _as_float32(interests)
        if vectors.ndim == 2:
            vectors = vectors[:, None, :]
        batch, k, d = vectors.shape
        if not 1 <= n <= self.index.ntotal:
            raise ValueError(f"n must be between 1 and the number of items ({self.index.ntotal}), got {n}")
        scores, rows = self.index.search(vectors.reshape(batch * k, d), n)
        scores, item_ids = scores.reshape(batch, k * n), rows.reshape(batch, k * n) + 1
        # The same item found by several interests keeps its best score (Eq 1).
        order = np.argsort(-scores, axis=1, kind="stable")
        scores = np.take_along_axis(scores, order, axis=1)
        item_ids = np.take_along_axis(item_ids, order, axis=1)
        top_scores, top_items = np.empty((batch, n), np.float32), np.empty((batch, n), np.int64)
        for user in range(batch):
            _, first = np.unique(item_ids[user], return_index=True)
            keep = np.sort(first)[:n]
            top_scores[user], top_items[user] = scores[user, keep], item_ids[user, keep]
        return top_scores, top_items
