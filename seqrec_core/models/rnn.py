"""GRU4Rec and LSTM: recurrent next-item models with the same full-softmax loss and interface as SASRec.

One module for both families: ``GRU4RecConfig`` (family ``gru4rec``) and ``LSTMConfig`` (family ``lstm``) share
:class:`RNNConfig`, and one :class:`RNNRec` picks its cell from the family. Item embedding -> dropout ->
multi-layer GRU/LSTM -> dropout -> LayerNorm -> hidden states, scored against the (tied) item embeddings.
With ``text_encoder`` set, each item vector is its learned id vector plus its projected title vector
(:func:`seqrec_core.models.text_features.text_aware_embedding`), on the input and the tied output side alike.
Why the sqrt(D) input scale and the final LayerNorm (as in SASRec): the embeddings start tiny (std 0.02) and are
shared with the output layer; scaled inputs drive the cell from the first step, and the norm keeps the logits'
scale in check. On Beauty (6 epochs, GRU) they lifted validation NDCG@10 from 0.018 to 0.039.

Why right-align instead of feeding the left-padded batch: a recurrent cell's state moves even on a zero input
(biases), so left padding in front of a history would change its final state. Each row is rolled so that its
real events start at column 0, the RNN runs over that (padding now trails and cannot reach any real position,
which is causal by construction) and the outputs are rolled back; the last column is the state after the last
real event whatever the padding. A plain (unpacked) RNN call keeps the fused kernels; packing buys nothing
here because the trainer already groups windows of similar length.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from seqrec_core.errors import InputError
from seqrec_core.models.base import check_dropout, check_int
from seqrec_core.models.neural import FastDropout, full_softmax_cross_entropy, item_dropout
from seqrec_core.models.sasrec import HiddenOutput
from seqrec_core.models.text_features import check_text_options, text_aware_embedding

CELLS = {"gru4rec": nn.GRU, "lstm": nn.LSTM}


@dataclass(frozen=True)
class RNNConfig:
    """Hyper-parameters shared by the recurrent families; the run folder stores exactly these fields."""

    n_items: int
    hidden_size: int = 64  # item-embedding width = recurrent state width (the output layer is tied)
    num_layers: int = 1
    dropout: float = 0.3  # on the item embeddings, between layers and on the output states
    item_dropout: float = 0.0  # training only: share of input events whose item vector is blanked
    max_len: int = 50
    text_encoder: str | None = None  # transformers checkpoint (hub name or folder) that read the item titles
    text_dim: int = 0  # width of its vectors, set from the encoder when training; 0 = no item text
    family: str = "gru4rec"

    def __post_init__(self) -> None:
        check_int("n_items", self.n_items, 1, 50_000_000)
        check_int("hidden_size", self.hidden_size, 2, 4096)
        check_int("num_layers", self.num_layers, 1, 16)
        check_int("max_len", self.max_len, 1, 4096)
        check_dropout(self.dropout)
        check_dropout(self.item_dropout, "item_dropout")
        check_text_options(self.text_encoder, self.text_dim)
        allowed = self._families()
        if self.family not in allowed:
            raise InputError(f"family {self.family!r} is not one of {list(allowed)}")

    @classmethod
    def _families(cls) -> tuple[str, ...]:
        return tuple(CELLS)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def option_names(cls) -> list[str]:
        """Options a person may set (everything but the data-given n_items and the family tag)."""
        return [f.name for f in fields(cls) if f.name not in ("n_items", "family")]


@dataclass(frozen=True)
class GRU4RecConfig(RNNConfig):
    """GRU4Rec (Hidasi et al. 2016) trained with full softmax over the catalogue on every position."""

    family: str = "gru4rec"

    @classmethod
    def _families(cls) -> tuple[str, ...]:
        return ("gru4rec",)


@dataclass(frozen=True)
class LSTMConfig(RNNConfig):
    """The same recurrent recommender with an LSTM cell."""

    family: str = "lstm"

    @classmethod
    def _families(cls) -> tuple[str, ...]:
        return ("lstm",)


def right_align(x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Roll each row of a left-padded (B, T, ...) tensor so its ``lengths`` real entries start at column 0.

    Returns (aligned, index); ``left_align(y, index)`` puts per-column results back where they came from."""
    t = x.shape[1]
    cols = torch.arange(t, device=x.device)  # (T,)
    index = (cols[None, :] + (t - lengths)[:, None]) % t  # (B, T) source column of each aligned column
    gather = index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, gather), index


def left_align(y: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`right_align` for a (B, T, D) tensor computed on the aligned layout."""
    out = torch.empty_like(y)  # (B, T, D)
    return out.scatter_(1, index[..., None].expand_as(y), y)


def run_recurrent(rnn: nn.Module, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Run ``rnn`` (batch_first) over left-padded embeddings x (B, T, D); padding positions come back as 0.

    Row by row the output at a real position equals the RNN run over that row's real events alone."""
    lengths = real.sum(1)  # (B,)
    aligned, index = right_align(x, lengths)  # (B, T, D) real events first
    out, _ = rnn(aligned)  # (B, T, H)
    out = left_align(out, index)  # (B, T, H) back to the left-padded layout
    return out * real[..., None]  # (B, T, H) zero at padding


class RNNRec(nn.Module):
    """Recurrent next-item model: ``forward`` = training loss, ``score`` = ranking of the whole catalogue."""

    def __init__(self, config: RNNConfig) -> None:
        super().__init__()
        self.config = config
        d = config.hidden_size
        self.item_emb = nn.Embedding(config.n_items + 1, d, padding_idx=0)
        self.emb_dropout = FastDropout(config.dropout)
        self.rnn = CELLS[config.family](d, d, num_layers=config.num_layers, batch_first=True,
                                        dropout=config.dropout if config.num_layers > 1 else 0.0)
        self.out_dropout = FastDropout(config.dropout)
        self.norm = nn.LayerNorm(d)
        nn.init.normal_(self.item_emb.weight, std=0.02)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()
        # With item text: id vector + projected title vector, at the input and (tied) in the output layer.
        self.item_emb = text_aware_embedding(self.item_emb, config.n_items, config.text_encoder, config.text_dim)

    def forward_hidden(self, input_ids: torch.Tensor, output_attentions: bool = False) -> HiddenOutput:
        """States (B, T, D) after each event (0 at padding); recurrent models have no attention maps."""
        input_ids = input_ids[:, -self.config.max_len:]  # (B, T)
        real = input_ids != 0  # (B, T)
        x = item_dropout(self.item_emb(input_ids), self.config.item_dropout, self.training)  # (B, T, D)
        x = self.emb_dropout(x * math.sqrt(self.config.hidden_size))  # (B, T, D)
        states = self.out_dropout(run_recurrent(self.rnn, x, real))  # (B, T, D)
        hidden = self.norm(states) * real[..., None]  # (B, T, D) padding stays 0 (the norm's bias would not)
        return HiddenOutput(hidden=hidden, attentions=None)

    def forward(self, input_ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean next-item cross-entropy over every position with a target (``targets`` 0 = no target)."""
        hidden = self.forward_hidden(input_ids).hidden  # (B, T, D)
        return position_loss(hidden, targets, self.output_weights())

    def score(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Scores (B, n_items + 1) for the item after the last column; column 0 (padding) is -inf."""
        return score_last(self.forward_hidden(input_ids).hidden, self.output_weights())

    def output_weights(self) -> torch.Tensor:
        """The output layer (n_items + 1, D), ``score = hidden @ output_weights().T``: the input table (tied;
        with item text, id vector + projected title vector, so a title-only item can still be recommended)."""
        return self.item_emb.weight

    def item_embeddings(self) -> torch.Tensor:
        """The INPUT item vectors (n_items + 1, D), row 0 = padding (what the embeddings page projects); tied,
        so also the output layer."""
        return self.item_emb.weight


def position_loss(hidden: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Full-softmax CE of hidden (B, T, D) against targets (B, T') (right-aligned, 0 = none) over weight's rows 1..V."""
    where = targets[:, -hidden.shape[1]:] != 0  # (B, T)
    h = hidden[where]  # (N, D) only positions that predict something: the output layer is the big cost
    y = targets[:, -hidden.shape[1]:][where]  # (N,)
    return full_softmax_cross_entropy(h, weight, y, first_column=1)  # the padding row is no candidate


def score_last(hidden: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """(B, V + 1) scores of the last column's state against every item vector; column 0 = -inf."""
    scores = hidden[:, -1] @ weight.T  # (B, V + 1)
    scores[:, 0] = float("-inf")
    return scores
