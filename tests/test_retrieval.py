"""faiss retrieval returns exactly the top N of max-over-interests scores."""

import numpy as np
import pytest
import torch

from recbole_umi.retrieval import InterestRetriever


def test_matches_brute_force_max_over_interests():
    torch.manual_seed(0)
    items = torch.randn(201, 8)
    interests = torch.randn(5, 3, 8)
    scores = torch.einsum("bkd,nd->bkn", interests, items).max(dim=1).values
    scores[:, 0] = -float("inf")
    expected_scores, expected_items = scores.topk(20, dim=1)
    got_scores, got_items = InterestRetriever(items).search(interests, 20)
    np.testing.assert_array_equal(got_items, expected_items.numpy())
    np.testing.assert_allclose(got_scores, expected_scores.numpy(), rtol=1e-5)


def test_single_interest_and_bad_n():
    items = torch.eye(4)
    retriever = InterestRetriever(items)
    _, ids = retriever.search(torch.tensor([[0.0, 0.0, 1.0, 0.5]]), 2)
    assert ids.tolist() == [[2, 3]]
    with pytest.raises(ValueError, match="n must be"):
        retriever.search(torch.ones(1, 4), 4)
