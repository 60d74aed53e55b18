"""BERT4Rec: a bidirectional Transformer trained to fill in masked items (the cloze task), used for next-item
ranking by appending a mask token after the history.

The body is a ``transformers`` ``BertModel`` built from a ``BertConfig`` (no hub download: nothing pretrained
exists for a private item vocabulary). The item vocabulary is ours, as in SASRec: ``item_emb =
nn.Embedding(n_items + 1, d, padding_idx=0)`` fed as ``inputs_embeds`` and tied as the output layer, so a score
is ``hidden @ item_emb.weight.T`` and has exactly ``n_items + 1`` columns. The mask token is NOT a row of
``item_emb`` but a separate vector ``mask_emb``: the explanation engines swap ``item_emb`` for Captum and read
its rows as items 0..n_items, and the mask must never be ranked as an item. With ``text_encoder`` set, each item
vector is its learned id vector plus its projected title vector (inputs and tied outputs alike; see
:func:`seqrec_core.models.text_features.text_aware_embedding`).

Inference (``forward_hidden`` / ``score``): the left-padded history (B, T) gets the mask token appended as one
more column, so ``hidden`` is (B, T + 1, D) and ``hidden[:, -1]`` (the mask's state) scores the next item.
Training (``forward``): the trainer's next-item windows are turned back into the full sequence (inputs + last
target), a ``mask_prob`` share of its events is replaced by the mask token (at least one per row; with
probability ``mask_last_prob`` a row masks only its latest event, which is exactly the inference case), and the
masked items are predicted with full-softmax cross-entropy over the catalogue.

Two choices differ from a stock ``BertModel``, both because a masked column holds no item of its own, so what
predicts its item reaches it only through attention:

- The value and attention-output projections start at LeCun scale (std ``1 / sqrt(d)``) instead of BERT's fixed
  0.02 (:meth:`BERT4Rec._init_attention`). With 0.02 the attention path starts at ``0.02**2 * d`` of the residual
  stream's scale (1.3% at d 32, 2.6% at d 64; BERT-base's d 768 gives 31%), so a small model's mask states start
  blind to their context and learn it only slowly; a causal model (SASRec) is spared that, since each position
  sees its own item on the residual path. Queries and keys keep 0.02 (near-uniform attention at the start).
- With item text, items that no training window shows are no candidates of the training softmax (see
  :meth:`BERT4Rec.set_item_counts`).

Positions are learned (BERT's table) and aligned to the END of the sequence: the last column always sits at
position ``max_len`` (the table has ``max_len + 1`` rows: ``max_len`` events plus the mask), so the mask at
inference and the latest event masked in training share a position, and adding left padding changes nothing.
Attention is bidirectional over the real columns; padding is never a key.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from seqrec_core.errors import InputError
from seqrec_core.models.base import check_int
from seqrec_core.models.neural import full_softmax_cross_entropy
from seqrec_core.models.sasrec import HiddenOutput, mask_dtype, run_backbone, swap_dropouts
from seqrec_core.models.text_features import check_text_options, text_aware_embedding


def _check_share(name: str, value: object, low_open: bool) -> None:
    ok = not isinstance(value, bool) and isinstance(value, (int, float))
    ok = ok and (0 < value <= 1 if low_open else 0 <= value <= 1)  # type: ignore[operator]
    if not ok:
        span = "(0, 1]" if low_open else "[0, 1]"
        raise InputError(f"{name} {value!r} is out of range; use a number in {span}, e.g. 0.5")


@dataclass(frozen=True)
class BERT4RecConfig:
    """Every hyper-parameter of a BERT4Rec model; the run folder stores exactly these fields."""

    n_items: int
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 2
    dropout: float = 0.1  # 0.0-0.2 learned alike in a 150 s Beauty run; 0.1 kept as mild regularisation
    max_len: int = 50  # events the model sees; the position table has one more row, for the mask token
    # Share of a sequence's events hidden behind the mask token in training (cloze). 0.6 is the paper's best
    # for Beauty; measured here: 0.2-0.6 learn at about the same rate per epoch, 0.6 slightly ahead.
    mask_prob: float = 0.6
    # Share of rows that mask only their latest event, i.e. train exactly the inference case. 0.5 gave the best
    # 150 s Beauty result; 1.0 (next-item only) fits the training set fast and stalls on validation.
    mask_last_prob: float = 0.5
    text_encoder: str | None = None  # transformers checkpoint (hub name or folder) that read the item titles
    text_dim: int = 0  # width of its vectors, set from the encoder when training; 0 = no item text
    family: str = "bert4rec"

    def __post_init__(self) -> None:
        check_int("n_items", self.n_items, 1, 50_000_000)
        check_int("hidden_size", self.hidden_size, 2, 4096)
        check_int("num_layers", self.num_layers, 1, 48)
        check_int("num_heads", self.num_heads, 1, 64)
        check_int("max_len", self.max_len, 1, 4096)
        if self.hidden_size % self.num_heads:
            raise InputError(f"hidden_size {self.hidden_size} must be divisible by num_heads {self.num_heads}; "
                             "pick e.g. hidden_size 64 with num_heads 2")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise InputError(f"dropout {self.dropout!r} is out of range; use a number in [0, 1), e.g. 0.1")
        _check_share("mask_prob", self.mask_prob, low_open=True)
        _check_share("mask_last_prob", self.mask_last_prob, low_open=False)
        check_text_options(self.text_encoder, self.text_dim)
        if self.family != "bert4rec":
            raise InputError(f"family {self.family!r} is not one of ['bert4rec']")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def option_names(cls) -> list[str]:
        """Options a person may set (everything but the data-given n_items and the family tag)."""
        return [f.name for f in fields(cls) if f.name not in ("n_items", "family")]


class BERT4Rec(nn.Module):
    """Masked-item model: ``forward`` = cloze training loss, ``score`` = ranking for the slot after the history."""

    # What attention views need to know: forward_hidden appends one token (the mask) after the history, and
    # attention is bidirectional (a map's upper triangle is real attention, not a forbidden future).
    appended_tokens = 1
    causal = False

    def __init__(self, config: BERT4RecConfig) -> None:
        super().__init__()
        from transformers import BertConfig, BertModel  # lazy: 2 s import, models only

        from seqrec_core.models.fast_attention import ATTENTION  # SDPA, with a cheap dropout mask on CPU

        self.config = config
        d = config.hidden_size
        self.item_emb = nn.Embedding(config.n_items + 1, d, padding_idx=0)
        self.mask_emb = nn.Parameter(torch.zeros(d))  # the [MASK] token's input vector; never an output row
        hf = BertConfig(vocab_size=1, hidden_size=d, num_hidden_layers=config.num_layers,
                        num_attention_heads=config.num_heads, intermediate_size=4 * d, hidden_act="gelu",
                        hidden_dropout_prob=config.dropout, attention_probs_dropout_prob=config.dropout,
                        max_position_embeddings=config.max_len + 1, type_vocab_size=1, layer_norm_eps=1e-12,
                        pad_token_id=0, use_cache=False, is_decoder=False)
        hf._attn_implementation = ATTENTION
        self.backbone = BertModel(hf, add_pooling_layer=False)
        swap_dropouts(self.backbone)
        self.backbone.get_input_embeddings().weight.requires_grad_(False)  # unused: we pass inputs_embeds
        self._init_attention()
        # BERT's masked-LM transform (dense -> GELU -> LayerNorm) before the tied output layer, as in the paper.
        self.head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.LayerNorm(d, eps=1e-12))
        nn.init.normal_(self.item_emb.weight, std=0.02)
        nn.init.normal_(self.mask_emb, std=0.02)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()
        # With item text: id vector + projected title vector, at the input and (tied) in the output layer; the
        # mask token stays a plain vector (it has no title).
        self.item_emb = text_aware_embedding(self.item_emb, config.n_items, config.text_encoder, config.text_dim)
        # Training-softmax candidates when some items are never trained (item text only; see set_item_counts):
        # item indices (C,), and each item's column among them (n_items + 1,). Not saved: training state only.
        self.register_buffer("_candidates", None, persistent=False)
        self.register_buffer("_candidate_column", None, persistent=False)

    def _init_attention(self) -> None:
        """LeCun-normal value and attention-output projections (std 1 / sqrt(d), zero bias), so that at the start
        a masked column's state gets its context at the residual stream's scale rather than ~0.02**2 * d of it
        (see the module docstring). Everything else keeps BERT's initialisation."""
        std = self.config.hidden_size ** -0.5
        for layer in self.backbone.encoder.layer:
            for linear in (layer.attention.self.value, layer.attention.output.dense):
                nn.init.normal_(linear.weight, std=std)
                nn.init.zeros_(linear.bias)

    # ----------------------------------------------------------------------------------------------- body
    def _encode(self, x: torch.Tensor, real: torch.Tensor, output_attentions: bool = False) -> HiddenOutput:
        """The Transformer over input vectors x (B, S, D) whose real columns (B, S) are events or masks."""
        after = real.flip(1).cumsum(1).flip(1)  # (B, S) real columns at or after each column
        position_ids = (self.config.max_len + 1 - after).clamp_(0, self.config.max_len)  # last column -> max_len
        mask = self._attention_mask(real, mask_dtype(x))  # (B, 1, S, S)
        out = run_backbone(self.backbone, x, mask, position_ids, output_attentions)
        return HiddenOutput(hidden=self.head(out.hidden), attentions=out.attentions)  # (B, S, D)

    @staticmethod
    def _attention_mask(real: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Bidirectional padding mask, additive (0 / most negative): every query sees every real column; a
        padded query sees only itself, so no softmax row is empty (no NaN) and padding is never a key."""
        s = real.shape[1]
        allowed = real[:, None, :] | torch.eye(s, dtype=torch.bool, device=real.device)[None]  # (B, S, S)
        mask = torch.zeros(allowed.shape, dtype=dtype, device=real.device)  # (B, S, S)
        return mask.masked_fill_(~allowed, torch.finfo(dtype).min)[:, None]  # (B, 1, S, S)

    def forward_hidden(self, input_ids: torch.Tensor, output_attentions: bool = False) -> HiddenOutput:
        """States of the history plus an appended mask token: hidden (B, T + 1, D), the last column being the
        mask whose state scores the next item; attentions (per layer (B, H, T + 1, T + 1)) only when asked
        for, computed with eager attention for that call."""
        input_ids = input_ids[:, -self.config.max_len:]  # (B, T) never longer than the position table allows
        b = input_ids.shape[0]
        x = self.item_emb(input_ids)  # (B, T, D) through the attribute, so the explainers can swap it
        x = torch.cat([x, self.mask_emb.to(x.dtype).expand(b, 1, -1)], dim=1)  # (B, T + 1, D)
        real = torch.cat([input_ids != 0, input_ids.new_ones(b, 1, dtype=torch.bool)], dim=1)  # (B, T + 1)
        return self._encode(x, real, output_attentions)

    # ---------------------------------------------------------------------------------------------- train
    def cloze_mask(self, seq: torch.Tensor) -> torch.Tensor:
        """Which columns of ``seq`` (B, S) to hide: a ``mask_prob`` share of the real ones, at least one per
        row, and for a ``mask_last_prob`` share of rows only the latest event (what inference asks)."""
        real = seq != 0  # (B, S)
        masked = real & (torch.rand(seq.shape, device=seq.device) < self.config.mask_prob)  # (B, S)
        last_only = torch.rand(seq.shape[0], device=seq.device) < self.config.mask_last_prob  # (B,)
        last = torch.zeros_like(masked)
        last[:, -1] = True
        masked = torch.where(last_only[:, None], last & real, masked)  # (B, S)
        empty = ~masked.any(1) & real.any(1)  # (B,) rows the dice left without a masked event
        if bool(empty.any()):
            pick = torch.where(real, torch.rand(seq.shape, device=seq.device), -1.0).argmax(1)  # (B,) a real column
            masked[empty, pick[empty]] = True
        return masked

    def cloze_hidden(self, seq: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        """States (B, S, D) of a whole left-padded sequence (B, S) whose ``masked`` columns show the mask token
        instead of their item; the state at a masked column is what predicts that column's item."""
        x = self.item_emb(seq)  # (B, S, D)
        x = torch.where(masked[..., None], self.mask_emb.to(x.dtype), x)  # (B, S, D) masked events hidden
        return self._encode(x, seq != 0).hidden  # (B, S, D)

    def forward(self, input_ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cloze loss: mean full-softmax cross-entropy of the masked events of each window.

        The trainer's windows are next-item pairs (``targets`` = inputs shifted by one, 0 = no target); the last
        target is each window's latest event, so inputs + last target is the whole window, left-padded."""
        seq = torch.cat([input_ids, targets[:, -1:]], dim=1)[:, -(self.config.max_len + 1):]  # (B, S)
        masked = self.cloze_mask(seq)  # (B, S)
        h = self.cloze_hidden(seq, masked)[masked]  # (N, D) only masked columns: the output layer is the big cost
        y = seq[masked]  # (N,)
        if self._candidates is not None:  # never-trained items are no negatives: only their title scores them
            weight = self.output_weights().index_select(0, self._candidates)  # (C, D)
            return full_softmax_cross_entropy(h, weight, self._candidate_column[y])
        return full_softmax_cross_entropy(h, self.output_weights(), y, first_column=1)  # padding row: no candidate

    def set_item_counts(self, counts: torch.Tensor) -> None:
        """Training events per item, counts (n_items,) (the trainer calls this before training). With item text,
        items with none leave the training softmax's candidates (scoring still ranks every item).

        Why: the trainer holds such an item's id vector (``hold_untrained``), so as a negative in every softmax it
        could only push down its own title part through the shared projection: titles of items nobody has seen
        yet (a re-listed product, a new release) would be learned as never chosen, while their item is one that
        did not exist when the training events happened. Without item text nothing changes (an untrained id
        vector sinks, as a never-seen item should)."""
        trained = torch.cat([counts.new_zeros(1), counts]) > 0  # (n_items + 1,) padding: not a candidate
        if not hasattr(self.item_emb, "hold_untrained") or bool(trained[1:].all()):
            self._candidates = self._candidate_column = None
            return
        device = self.mask_emb.device
        self._candidates = trained.nonzero().squeeze(1).to(device)  # (C,)
        column = torch.full(trained.shape, -1, dtype=torch.long)  # (n_items + 1,) -1: not a candidate
        column[trained] = torch.arange(int(trained.sum()))
        self._candidate_column = column.to(device)

    # ---------------------------------------------------------------------------------------------- infer
    def score(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Scores (B, n_items + 1) for the item after the last column; column 0 (padding) is -inf."""
        hidden = self.forward_hidden(input_ids).hidden[:, -1]  # (B, D) the appended mask token
        scores = hidden @ self.output_weights().T  # (B, V + 1)
        scores[:, 0] = float("-inf")
        return scores

    def output_weights(self) -> torch.Tensor:
        """The output layer (n_items + 1, D), ``score = hidden @ output_weights().T``: the input table (tied;
        with item text, id vector + projected title vector, so a title-only item can still be recommended)."""
        return self.item_emb.weight

    def item_embeddings(self) -> torch.Tensor:
        """The INPUT item vectors (n_items + 1, D), row 0 = padding (what the embeddings page projects; tied, so
        also the output layer); the mask vector is not among them."""
        return self.item_emb.weight
