"""LSI: long- and short-term interest, gated per dimension, with the same loss and interface as SASRec.

Why two parts: a person's long-standing taste (skin care, not make-up) and their current errand (the last few
clicks) pull the next item in different directions, and how much each matters differs by person and moment.
- long-term interest ``long_t``: an LSTM over the whole window (right-aligned, as in :mod:`.rnn`, so left
  padding never moves it), the state after event t;
- short-term interest ``short_t``: attention over the embeddings of the latest ``short_window`` events
  t-short_window+1..t, queried by ``long_t`` (what the person is known to like picks what in the recent window
  matters), plus a learned bias per lag (recency);
- a sigmoid gate per dimension from both: ``h_t = g_t * long_t + (1 - g_t) * short_t``.
Every part is causal, so every position is trained, exactly like the other families. As in :mod:`.rnn`, the
item vectors enter scaled by sqrt(D) and the mix leaves through dropout and a LayerNorm (faster, better fits).
With ``text_encoder`` set, each item vector is its learned id vector plus its projected title vector (inputs and
tied outputs alike; :func:`seqrec_core.models.text_features.text_aware_embedding`).

Attention maps (``forward_hidden(..., output_attentions=True)``): a one-tuple with the (B, 1, T, T) short-window
weights; each real row is zero outside its window and on padding and sums to 1 over its real events (a padded
row attends to itself). They are THIS model's attention, one layer and one head, and only the short-term half
of the prediction: the gate (see :meth:`LSIRec.forward_parts`) says how much of it reaches the score, and the
long-term LSTM state carries everything older, so the Explain page's IG and occlusion are the full picture.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import NamedTuple

import torch
from torch import nn

from seqrec_core.errors import InputError
from seqrec_core.models.base import check_dropout, check_int
from seqrec_core.models.neural import FastDropout, item_dropout
from seqrec_core.models.rnn import position_loss, run_recurrent, score_last
from seqrec_core.models.sasrec import HiddenOutput
from seqrec_core.models.text_features import check_text_options, text_aware_embedding


@dataclass(frozen=True)
class LSIConfig:
    """Every hyper-parameter of an LSI model; the run folder stores exactly these fields."""

    n_items: int
    hidden_size: int = 64  # item-embedding width = LSTM state = attention width (the output layer is tied)
    num_layers: int = 1  # LSTM layers of the long-term part
    dropout: float = 0.3  # on item embeddings, between LSTM layers and on the mixed output
    item_dropout: float = 0.0  # training only: share of input events whose item vector is blanked
    max_len: int = 50
    short_window: int = 10  # latest events the short-term attention sees (the event itself included)
    text_encoder: str | None = None  # transformers checkpoint (hub name or folder) that read the item titles
    text_dim: int = 0  # width of its vectors, set from the encoder when training; 0 = no item text
    family: str = "lsi"

    def __post_init__(self) -> None:
        check_int("n_items", self.n_items, 1, 50_000_000)
        check_int("hidden_size", self.hidden_size, 2, 4096)
        check_int("num_layers", self.num_layers, 1, 16)
        check_int("max_len", self.max_len, 1, 4096)
        check_int("short_window", self.short_window, 1, 4096)
        check_dropout(self.dropout)
        check_dropout(self.item_dropout, "item_dropout")
        check_text_options(self.text_encoder, self.text_dim)
        if self.family != "lsi":
            raise InputError(f"family {self.family!r} is not one of ['lsi']")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def option_names(cls) -> list[str]:
        """Options a person may set (everything but the data-given n_items and the family tag)."""
        return [f.name for f in fields(cls) if f.name not in ("n_items", "family")]


class LSIParts(NamedTuple):
    """The pieces of one LSI pass, all at every position (0 at padding except the attention's self-loop)."""

    hidden: torch.Tensor  # (B, T, D) gated mix, before output dropout and norm
    long: torch.Tensor  # (B, T, D) LSTM state after each event
    short: torch.Tensor  # (B, T, D) attention read-out over the recent window
    gate: torch.Tensor  # (B, T, D) share of the long-term part, in (0, 1)
    attention: torch.Tensor  # (B, T, T) short-window weights; real rows sum to 1 inside their window


def window_mask(real: torch.Tensor, window: int) -> torch.Tensor:
    """(B, T, T) bool: query q may see key k iff q - window < k <= q and k is real; a padded query sees only
    itself (so no softmax row is empty). Left padding is contiguous, so columns count events back."""
    t = real.shape[1]
    idx = torch.arange(t, device=real.device)
    lag = idx[:, None] - idx[None, :]  # (T, T) query - key
    inside = (lag >= 0) & (lag < window)  # (T, T)
    eye = torch.eye(t, dtype=torch.bool, device=real.device)
    return (inside[None] & real[:, None, :]) | (eye[None] & ~real[:, :, None])  # (B, T, T)


class LSIRec(nn.Module):
    """Long/short-term interest model: ``forward`` = training loss, ``score`` = ranking of the catalogue."""

    def __init__(self, config: LSIConfig) -> None:
        super().__init__()
        self.config = config
        d = config.hidden_size
        self.item_emb = nn.Embedding(config.n_items + 1, d, padding_idx=0)
        self.emb_dropout = FastDropout(config.dropout)
        self.lstm = nn.LSTM(d, d, num_layers=config.num_layers, batch_first=True,
                            dropout=config.dropout if config.num_layers > 1 else 0.0)
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d)
        self.value = nn.Linear(d, d)
        w = min(config.short_window, config.max_len)
        self.lag_bias = nn.Parameter(torch.zeros(w))  # recency: one learned logit offset per lag 0..w-1
        self.gate = nn.Linear(2 * d, d)
        self.out_dropout = FastDropout(config.dropout)
        self.norm = nn.LayerNorm(d)
        nn.init.normal_(self.item_emb.weight, std=0.02)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()
        # With item text: id vector + projected title vector, at the input and (tied) in the output layer.
        self.item_emb = text_aware_embedding(self.item_emb, config.n_items, config.text_encoder, config.text_dim)

    def forward_parts(self, input_ids: torch.Tensor) -> LSIParts:
        """Long state, short read-out, gate and attention at every position of left-padded ids (B, T)."""
        input_ids = input_ids[:, -self.config.max_len:]  # (B, T)
        real = input_ids != 0  # (B, T)
        x = self.item_emb(input_ids) * math.sqrt(self.config.hidden_size)  # (B, T, D) the one lookup Captum hooks
        x = self.emb_dropout(item_dropout(x, self.config.item_dropout, self.training))  # (B, T, D)
        long = run_recurrent(self.lstm, x, real)  # (B, T, D)
        t = input_ids.shape[1]
        w = self.lag_bias.shape[0]
        q = self.query(long)  # (B, T, D)
        k = self.key(x)  # (B, T, D)
        logits = q @ k.transpose(1, 2) / math.sqrt(q.shape[-1])  # (B, T, T)
        idx = torch.arange(t, device=x.device)
        lag = (idx[:, None] - idx[None, :]).clamp(0, w - 1)  # (T, T) masked outside the window below
        logits = logits + self.lag_bias[lag]  # (B, T, T)
        allowed = window_mask(real, w)  # (B, T, T)
        logits = logits.masked_fill(~allowed, float("-inf"))
        attention = torch.softmax(logits.float(), dim=-1).to(x.dtype)  # (B, T, T)
        short = (attention @ self.value(x)) * real[..., None]  # (B, T, D)
        gate = torch.sigmoid(self.gate(torch.cat([long, short], dim=-1)))  # (B, T, D)
        hidden = (gate * long + (1.0 - gate) * short) * real[..., None]  # (B, T, D)
        return LSIParts(hidden=hidden, long=long, short=short, gate=gate, attention=attention)

    def forward_hidden(self, input_ids: torch.Tensor, output_attentions: bool = False) -> HiddenOutput:
        """Mixed states (B, T, D); with ``output_attentions`` the short-window weights as ((B, 1, T, T),)."""
        parts = self.forward_parts(input_ids)
        attentions = (parts.attention[:, None],) if output_attentions else None  # one layer, one head
        real = input_ids[:, -self.config.max_len:, None] != 0  # (B, T, 1)
        hidden = self.norm(self.out_dropout(parts.hidden)) * real  # (B, T, D) padding stays 0
        return HiddenOutput(hidden=hidden, attentions=attentions)

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
