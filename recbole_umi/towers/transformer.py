"""A causal transformer encoder over the history: SASRec's, in plain torch.

Kang and McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018, as RecBole 1.2.1
implements it (``recbole/model/sequential_recommender/sasrec.py`` and the
``TransformerEncoder`` of ``recbole/model/layers.py``): the same arithmetic, module names,
parameter layout and initialisation, built in the same order, so that a seed gives the same
weights and state-dict keys as RecBole's ``SASRec`` (``tests/test_model_contracts.py`` loads
one's weights into the other). One difference: in training on the CPU, dropout draws its masks
from 16-bit draws (:class:`~recbole_umi.towers.ops.Dropout`, 8x faster there than
``nn.Dropout``'s Bernoulli draws), the distribution of RecBole's ``nn.Dropout`` (``p``
rounded to a multiple of 2^-16) but other masks from a seed. Compiled on the CPU, the linear
maps and the GELU take the ways of :mod:`recbole_umi.towers.ops` (:class:`~recbole_umi.towers.ops.Linear`,
:func:`~recbole_umi.towers.ops.gelu`): the same values up to float rounding.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from recbole_umi.settings import SettingsError
from recbole_umi.towers.ops import Dropout, Linear, causal_attention_mask, gelu, lookup
from recbole_umi.towers.settings import CausalEncoderSettings

__all__ = ["CausalTransformerEncoder", "TransformerEncoder", "attention_at", "causal_attention_mask", "last_position_output",
           "last_state"]


def _swish(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(x)


# RecBole's FeedForward.get_hidden_act
ACTIVATIONS = {"gelu": gelu, "relu": F.relu, "swish": _swish, "tanh": torch.tanh, "sigmoid": torch.sigmoid}


class MultiHeadAttention(nn.Module):
    """Multi-head self-attention, residual and layer norm. Shapes: ``B x T x d`` -> ``B x T x d``."""

    def __init__(self, n_heads: int, hidden_size: int, hidden_dropout_prob: float, attn_dropout_prob: float,
                 layer_norm_eps: float):
        super().__init__()
        if hidden_size % n_heads != 0:
            raise SettingsError("n_heads", n_heads, f"must divide the hidden size embedding_size ({hidden_size})")
        self.num_attention_heads = n_heads
        self.attention_head_size = hidden_size // n_heads
        self.all_head_size = self.num_attention_heads * self.attention_head_size
        self.sqrt_attention_head_size = math.sqrt(self.attention_head_size)
        self.query = Linear(hidden_size, self.all_head_size)
        self.key = Linear(hidden_size, self.all_head_size)
        self.value = Linear(hidden_size, self.all_head_size)
        self.softmax = nn.Softmax(dim=-1)
        self.attn_dropout = Dropout(attn_dropout_prob)
        self.dense = Linear(hidden_size, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.out_dropout = Dropout(hidden_dropout_prob)

    def forward(self, input_tensor: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return attention_at(self, input_tensor, input_tensor, attention_mask)


def attention_at(attention: nn.Module, query_states: torch.Tensor, states: torch.Tensor,
                 attention_mask: torch.Tensor) -> torch.Tensor:
    """Multi-head attention, residual and layer norm (RecBole's ``MultiHeadAttention.forward``)
    of ``attention`` (this module's :class:`MultiHeadAttention` or RecBole's, which hold the
    same parts under the same names) with the queries, and the residual, from
    ``query_states`` ``B x Q x d`` and the keys and values from ``states`` ``B x T x d``;
    ``attention_mask`` ``B x 1 x Q x T`` (additive). With ``query_states`` some positions of
    ``states`` and the mask's rows of those positions: those positions of the layer's output.

    Shapes: -> ``B x Q x d``.
    """
    def heads(x: torch.Tensor) -> torch.Tensor:
        return x.view(*x.size()[:-1], attention.num_attention_heads, attention.attention_head_size)

    query = heads(attention.query(query_states)).permute(0, 2, 1, 3)
    key = heads(attention.key(states)).permute(0, 2, 3, 1)
    value = heads(attention.value(states)).permute(0, 2, 1, 3)
    scores = torch.matmul(query, key) / attention.sqrt_attention_head_size + attention_mask
    probabilities = attention.attn_dropout(attention.softmax(scores))
    context = torch.matmul(probabilities, value).permute(0, 2, 1, 3).contiguous()
    context = context.view(*context.size()[:-2], attention.all_head_size)
    hidden_states = attention.out_dropout(attention.dense(context))
    return attention.LayerNorm(hidden_states + query_states)


def last_position_output(layers, hidden_states: torch.Tensor, attention_mask: torch.Tensor,
                         lengths: torch.Tensor) -> torch.Tensor:
    """The output of transformer ``layers`` (this module's or RecBole's
    ``TransformerLayer``, at least one) at each row's last position, ``lengths - 1``: every
    layer but the last at every position, the last one's keys and values from every position
    and its query, attention output and feed-forward layer at that one (the rest of that
    layer reaches no output there). The same values as the layers' output gathered there, up
    to float rounding, at two layers about 40% less arithmetic at T = 50, 30% at T = 10
    (docs/benchmarks.md, "RecBole's SASRec's last layer at one position"); in training the
    last layer's dropouts draw masks for that position only (the same distribution, other
    masks from a seed).

    Shapes: ``hidden_states`` ``B x T x d``, ``attention_mask`` ``B x 1 x T x T``, ``lengths``
    ``B`` (each at least 1) -> ``B x d``.
    """
    for layer in layers[:-1]:
        hidden_states = layer(hidden_states, attention_mask)
    last = (lengths - 1).view(-1, 1, 1, 1)
    query_states = last_state(hidden_states, lengths).unsqueeze(1)  # B x 1 x d
    mask_row = attention_mask.gather(2, last.expand(-1, attention_mask.size(1), 1, attention_mask.size(3)))
    attended = attention_at(layers[-1].multi_head_attention, query_states, hidden_states, mask_row)
    return layers[-1].feed_forward(attended).squeeze(1)


class FeedForward(nn.Module):
    """Point-wise feed-forward, residual and layer norm. Shapes: ``B x T x d`` -> ``B x T x d``."""

    def __init__(self, hidden_size: int, inner_size: int, hidden_dropout_prob: float, hidden_act: str,
                 layer_norm_eps: float):
        super().__init__()
        self.dense_1 = Linear(hidden_size, inner_size)
        self.intermediate_act_fn = ACTIVATIONS[hidden_act]
        self.dense_2 = Linear(inner_size, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.dropout = Dropout(hidden_dropout_prob)

    def forward(self, input_tensor: torch.Tensor) -> torch.Tensor:
        hidden_states = self.dropout(self.dense_2(self.intermediate_act_fn(self.dense_1(input_tensor))))
        return self.LayerNorm(hidden_states + input_tensor)


class TransformerLayer(nn.Module):
    """Self-attention then feed-forward."""

    def __init__(self, n_heads, hidden_size, inner_size, hidden_dropout_prob, attn_dropout_prob, hidden_act,
                 layer_norm_eps):
        super().__init__()
        self.multi_head_attention = MultiHeadAttention(n_heads, hidden_size, hidden_dropout_prob, attn_dropout_prob,
                                                       layer_norm_eps)
        self.feed_forward = FeedForward(hidden_size, inner_size, hidden_dropout_prob, hidden_act, layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.feed_forward(self.multi_head_attention(hidden_states, attention_mask))


class TransformerEncoder(nn.Module):
    """``n_layers`` transformer layers; like RecBole's, every layer starts as a copy of the
    first (its initial weights are drawn again by the encoder's initialisation)."""

    def __init__(self, n_layers, n_heads, hidden_size, inner_size, hidden_dropout_prob, attn_dropout_prob, hidden_act,
                 layer_norm_eps):
        super().__init__()
        layer = TransformerLayer(n_heads, hidden_size, inner_size, hidden_dropout_prob, attn_dropout_prob, hidden_act,
                                 layer_norm_eps)
        self.layer = nn.ModuleList([copy.deepcopy(layer) for _ in range(n_layers)])

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        for layer in self.layer:
            hidden_states = layer(hidden_states, attention_mask)
        return hidden_states


class CausalTransformerEncoder(nn.Module):
    """SASRec's encoder: item and position embeddings, layer norm, dropout, a causal
    transformer; the user's vector is the output at the last history position.

    Args:
        settings: the encoder's settings (its hidden size is ``embedding_size``).
        n_items: rows of its item table (0 the padding item).
        max_length: T, rows of the position table.

    Shapes: ``forward(item_seq B x T, item_seq_len B)`` -> ``B x d``; ``states(item_seq)`` -> ``B x T x d``.
    """

    def __init__(self, settings: CausalEncoderSettings, n_items: int, max_length: int):
        super().__init__()
        d = settings.embedding_size
        self.initializer_range = settings.initializer_range
        self.item_embedding = nn.Embedding(n_items, d, padding_idx=0)
        self.position_embedding = nn.Embedding(max_length, d)
        self.trm_encoder = TransformerEncoder(
            settings.n_layers, settings.n_heads, d, settings.inner_size, settings.hidden_dropout_prob,
            settings.attn_dropout_prob, settings.hidden_act, settings.layer_norm_eps,
        )
        self.LayerNorm = nn.LayerNorm(d, eps=settings.layer_norm_eps)
        self.dropout = Dropout(settings.hidden_dropout_prob)
        self.apply(self.init_weights)

    def share_item_table(self, table: nn.Embedding) -> None:
        """Read ``table`` (a tower's item table, the one its scores use) instead of a table of
        its own, initialised as SASRec's (normal(0, initializer_range), padding row 0). The
        encoder drew a table of its own first (RecBole's SASRec does) and it is replaced: the
        same draws, so a seed gives the same weights."""
        self.item_embedding = table
        self.init_weights(table)
        with torch.no_grad():
            table.weight[0].zero_()

    def init_weights(self, module: nn.Module) -> None:
        """SASRec's initialisation: normal(0, initializer_range) weights, zero biases, unit layer norms."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(mean=0.0, std=self.initializer_range)
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()

    def _inputs(self, item_seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The first layer's input ``B x T x d`` (item and position embeddings, layer norm,
        dropout) and the causal attention mask ``B x 1 x T x T``."""
        position_ids = torch.arange(item_seq.size(1), dtype=torch.long, device=item_seq.device)
        position_ids = position_ids.unsqueeze(0).expand_as(item_seq)
        input_emb = lookup(self.item_embedding, item_seq) + self.position_embedding(position_ids)
        return self.dropout(self.LayerNorm(input_emb)), causal_attention_mask(item_seq)

    def states(self, item_seq: torch.Tensor) -> torch.Tensor:
        """The contextual state of every history position (position t has seen items 1..t),
        ``B x T`` -> ``B x T x d``; padded positions hold values no real position reads."""
        return self.trm_encoder(*self._inputs(item_seq))

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """The state at each row's last position (:func:`last_position_output`: the last
        layer computed there only; the settings give at least one layer); every length at
        least 1."""
        return last_position_output(self.trm_encoder.layer, *self._inputs(item_seq), item_seq_len)


def last_state(states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The state at each user's last history position: ``B x T x d``, ``B`` -> ``B x d``
    (RecBole's ``gather_indexes``; every length must be at least 1)."""
    last = (lengths - 1).view(-1, 1, 1).expand(-1, -1, states.shape[-1])
    return states.gather(dim=1, index=last).squeeze(1)
