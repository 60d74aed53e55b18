"""SASRec: a causal Transformer over a user's item sequence that predicts the next item.

The Transformer body comes from ``transformers`` built from a config (no hub download): ``LlamaModel`` for
rotary positions (the default; relative positions let it learn trigger->response pairs far apart) or
``GPT2Model`` for learned absolute positions (classic SASRec). The item vocabulary is ours: an
``nn.Embedding(n_items + 1, d, padding_idx=0)`` fed as ``inputs_embeds``. The output layer (what
:meth:`SASRec.output_weights` returns) is that same table (tied) for the softmax losses and a separate table
``out_emb`` with a learned logit intercept for BCE/gBCE (``tied_output``; why: see :class:`SASRecConfig`).

Inputs are LEFT-padded ``(B, T)`` item ids with 0 = padding, the last column being the prediction point.
Positions are computed from the padding mask so that adding more left padding never changes a score.

Options beyond the classic model: ``time_features`` adds hour, weekday and gap embeddings of each event and of
the position's query time (:mod:`seqrec_core.models.time_features`; times then travel as a (B, T + 1) tensor
next to the ids), and ``loss`` picks full softmax, sampled softmax, BCE with one sampled negative per positive
(the original SASRec) or gBCE (gSASRec, Petrov & Macdonald 2023: k negatives and a calibrated positive term).
In training, ``item_dropout`` (default 0.2) blanks the item vectors of a share of the input events, which lifted
Beauty more than any other regulariser measured (bench/RESULTS.md).
"""
from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import ClassVar, Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from seqrec_core.errors import InputError
from seqrec_core.models.base import check_dropout, check_int
from seqrec_core.models.neural import (
    FastDropout,
    binary_negatives_loss,
    fast_dropout,
    full_softmax_cross_entropy,
    gbce_beta,
    item_dropout,
    sample_negative_pool,
)
from seqrec_core.models.text_features import check_text_options, text_aware_embedding
from seqrec_core.models.time_features import TimeFeatures


@dataclass(frozen=True)
class SASRecConfig:
    """Every hyper-parameter of a SASRec model; the run folder stores exactly these fields."""

    n_items: int
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 2
    # dropout and item_dropout: these class defaults are the sparse-log settings; a train job that leaves them unset
    # takes them from the log's density (training.from_log: 0.4 / 0.2 on Beauty-like logs, 0.1 / 0 on dense
    # ones, where these settings stop far-back pairs from being learned).
    dropout: float = 0.4  # measured best of 0.2-0.5 on Beauty (bench/RESULTS.md)
    # Training only: the share of input events whose item vector is blanked (the event keeps its position and
    # time), so the model cannot lean on any single past item (neural.item_dropout). 0.2 measured on Beauty:
    # test NDCG@10 0.0520 -> 0.0555 (3-seed means, with patience 10; bench/RESULTS.md).
    item_dropout: float = 0.2
    max_len: int = 50
    positions: Literal["rotary", "learned"] = "rotary"
    loss: Literal["full", "sampled", "bce", "gbce"] = "full"
    num_negatives: int = 256  # per positive, for "sampled" and "gbce" ("bce" always uses one)
    negatives: Literal["uniform", "popularity"] = "uniform"
    gbce_t: float = 0.75  # gBCE calibration: 0 = plain BCE with k negatives, 1 = fully calibrated (gSASRec's 0.75)
    time_features: bool = False  # hour/weekday/gap embeddings of each event and of the query time
    text_encoder: str | None = None  # transformers checkpoint (hub name or folder) that read the item titles
    text_dim: int = 0  # width of its vectors, set from the encoder when training; 0 = no item text
    # Output layer = the input item table (True) or a separate ``out_emb`` table plus, for bce/gbce, a learned
    # intercept ``out_bias`` (False). None (unset) picks by loss: tied for full/sampled softmax, untied for bce/gbce.
    # Why: the binary losses push every negative logit far below zero; tied and without an intercept the only way
    # there is a common vector in the item table, which the inputs share too (demo: gBCE NDCG@10 0.076 tied,
    # mean item vector as long as the items). The intercept is what fixes learning (0.076 -> 0.22); the separate
    # table (as gSASRec's reuse_item_embeddings=False) keeps the input vectors free of the output's needs. Softmax
    # is shift-invariant and learns well tied. True with bce/gbce is the model as it was before (no intercept), so
    # runs saved then still load. Set from the loss in __post_init__: a saved config always holds True or False.
    tied_output: bool | None = None
    label_smoothing: float = 0.0  # full softmax only: target = (1 - eps) onehot + eps spread over every item
    family: str = "sasrec"

    # What a stored config that lacks a field meant when it was saved: runs from before ``tied_output`` existed
    # were tied whatever their loss, and runs from before ``item_dropout`` had none. The run loader applies these
    # before building the config (setdefault).
    STORED_DEFAULTS: ClassVar[dict[str, object]] = {"tied_output": True, "item_dropout": 0.0}

    def __post_init__(self) -> None:
        check_int("n_items", self.n_items, 1, 50_000_000)
        check_int("hidden_size", self.hidden_size, 2, 4096)
        check_int("num_layers", self.num_layers, 1, 48)
        check_int("num_heads", self.num_heads, 1, 64)
        check_int("max_len", self.max_len, 1, 4096)
        check_int("num_negatives", self.num_negatives, 1, 1_000_000)
        if self.hidden_size % self.num_heads or (self.hidden_size // self.num_heads) % 2:
            raise InputError(f"hidden_size {self.hidden_size} must be divisible by num_heads {self.num_heads} "
                             "into an even head size; pick e.g. hidden_size 64 with num_heads 2")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise InputError(f"dropout {self.dropout!r} is out of range; use a number in [0, 1), e.g. 0.3")
        if isinstance(self.gbce_t, bool) or not isinstance(self.gbce_t, (int, float)) or not 0 <= self.gbce_t <= 1:
            raise InputError(f"gbce_t {self.gbce_t!r} is out of range; use a number in [0, 1], e.g. 0.75")
        eps = self.label_smoothing
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 <= eps < 1:
            raise InputError(f"label_smoothing {eps!r} is out of range; use a number in [0, 1), e.g. 0.1")
        if eps and self.loss != "full":
            raise InputError(f"label_smoothing applies to the full softmax only, not loss '{self.loss}'; drop it or "
                             "use --loss full")
        check_dropout(self.item_dropout, "item_dropout")
        if not isinstance(self.time_features, bool):
            raise InputError(f"time_features {self.time_features!r} must be true or false")
        check_text_options(self.text_encoder, self.text_dim)
        if self.tied_output is None:
            object.__setattr__(self, "tied_output", self.loss not in ("bce", "gbce"))
        elif not isinstance(self.tied_output, bool):
            raise InputError(f"tied_output {self.tied_output!r} must be true or false (or unset: tied for the "
                             "softmax losses, untied for bce/gbce)")
        for name, allowed in (("positions", ("rotary", "learned")), ("loss", ("full", "sampled", "bce", "gbce")),
                              ("negatives", ("uniform", "popularity")), ("family", ("sasrec",))):
            if getattr(self, name) not in allowed:
                raise InputError(f"{name} {getattr(self, name)!r} is not one of {list(allowed)}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def option_names(cls) -> list[str]:
        """Options a person may set (everything but the data-given n_items and the family tag)."""
        return [f.name for f in fields(cls) if f.name not in ("n_items", "family")]

    @staticmethod
    def inactive_options(values: Mapping[str, object]) -> dict[str, str]:
        """Options that do nothing with the loss in ``values`` (default "full"), each with why: the Train page
        disables them, so nobody tunes a setting the chosen loss never reads."""
        loss = str(values.get("loss") or "full")
        out = {}
        if loss not in ("sampled", "gbce"):
            out["num_negatives"] = (f"the {loss} loss " + ("ranks every item, so it samples no negatives."
                                                           if loss == "full" else "always uses one negative."))
        if loss == "full":
            out["negatives"] = "the full loss ranks every item, so no negatives are drawn."
        if loss != "gbce":
            out["gbce_t"] = f"it calibrates the gbce loss only; the loss is {loss}."
        if loss != "full":
            out["label_smoothing"] = f"it smooths the full softmax only; the loss is {loss}."
        return out


EAGER_LOCK = threading.Lock()  # module-level: a lock inside the module would make it unpicklable / uncopyable


def mask_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype attention scores will have: the autocast dtype inside autocast (SDPA wants the mask to match)."""
    if torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


def swap_dropouts(module: nn.Module) -> None:
    """Replace every nn.Dropout inside ``module`` with the faster equivalent (same keep probability)."""
    for name, child in module.named_children():
        if isinstance(child, nn.Dropout):
            setattr(module, name, FastDropout(child.p))
        else:
            swap_dropouts(child)


class HiddenOutput(NamedTuple):
    """What the Transformer body produces; attentions only when asked for (eager attention)."""

    hidden: torch.Tensor  # (B, T, D) after the final norm
    attentions: tuple[torch.Tensor, ...] | None  # per layer (B, H, T, T); rows sum to 1 over real keys


def run_backbone(backbone: nn.Module, x: torch.Tensor, mask: torch.Tensor, position_ids: torch.Tensor,
                 output_attentions: bool = False) -> HiddenOutput:
    """A transformers encoder/decoder body over input vectors x (B, T, D); attentions only when asked.

    Attention maps need eager attention; training and scoring use SDPA (:mod:`seqrec_core.models.fast_attention`:
    transformers' SDPA, with a cheaper dropout mask when training on a CPU). One additive float mask suits both
    kernels, so a scoring call is correct even while another thread holds the model in eager mode for an
    explanation; the switch itself is serialised by a lock shared by every family."""
    with EAGER_LOCK if output_attentions else contextlib.nullcontext():
        if output_attentions:
            backbone.set_attn_implementation("eager")
        try:
            out = backbone(inputs_embeds=x, attention_mask=mask, position_ids=position_ids,
                           output_attentions=output_attentions, use_cache=False)
        finally:
            if output_attentions:
                from seqrec_core.models.fast_attention import ATTENTION

                backbone.set_attn_implementation(ATTENTION)
    attentions = tuple(out.attentions) if output_attentions and out.attentions is not None else None
    return HiddenOutput(hidden=out.last_hidden_state, attentions=attentions)  # (B, T, D)


class SASRec(nn.Module):
    """Causal next-item model: ``forward`` = training loss, ``score`` = ranking of the whole catalogue."""

    def __init__(self, config: SASRecConfig) -> None:
        super().__init__()
        from transformers import GPT2Config, GPT2Model, LlamaConfig, LlamaModel  # lazy: 2 s import, models only

        from seqrec_core.models.fast_attention import ATTENTION  # SDPA, with a cheap dropout mask on CPU

        self.config = config
        d = config.hidden_size
        self.item_emb = nn.Embedding(config.n_items + 1, d, padding_idx=0)
        self.time_emb = TimeFeatures(d) if config.time_features else None
        # GPT-2 applies its own dropout after adding positions; Llama has none, so ours goes on the input.
        self.emb_dropout = FastDropout(config.dropout) if config.positions == "rotary" else nn.Identity()
        if config.positions == "rotary":
            hf = LlamaConfig(vocab_size=1, hidden_size=d, intermediate_size=4 * d, num_hidden_layers=config.num_layers,
                             num_attention_heads=config.num_heads, num_key_value_heads=config.num_heads,
                             max_position_embeddings=max(config.max_len, 2), attention_dropout=config.dropout,
                             rms_norm_eps=1e-6, pad_token_id=0, bos_token_id=None, eos_token_id=None,
                             tie_word_embeddings=False, use_cache=False)
            hf._attn_implementation = ATTENTION
            self.backbone: nn.Module = LlamaModel(hf)
            # Llama has no residual dropout; sparse recommendation logs need it, so add it after each sub-block.
            for layer in self.backbone.layers:
                layer.self_attn.o_proj.register_forward_hook(self._dropout_hook)
                layer.mlp.register_forward_hook(self._dropout_hook)
        else:
            hf = GPT2Config(vocab_size=1, n_positions=config.max_len, n_embd=d, n_layer=config.num_layers,
                            n_head=config.num_heads, n_inner=4 * d, resid_pdrop=config.dropout,
                            embd_pdrop=config.dropout, attn_pdrop=config.dropout, use_cache=False,
                            bos_token_id=None, eos_token_id=None)
            hf._attn_implementation = ATTENTION
            self.backbone = GPT2Model(hf)
            swap_dropouts(self.backbone)
        self.backbone.get_input_embeddings().weight.requires_grad_(False)  # unused: we pass inputs_embeds
        nn.init.normal_(self.item_emb.weight, std=0.02)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()
        # id vector + projected title vector (when the run read titles), for inputs and tied outputs
        self.item_emb = text_aware_embedding(self.item_emb, config.n_items, config.text_encoder, config.text_dim)
        # Untied output table; text-aware models add the same projected title vector to it (see output_weights).
        # The text module is kept as a plain (unregistered) reference too: no second state-dict entry, and a view
        # of the model whose item_emb is swapped (the explainers' Captum proxy) still reaches it.
        object.__setattr__(self, "_output_text", getattr(self.item_emb, "text", None))
        self.out_emb = None if config.tied_output else nn.Embedding(config.n_items + 1, d, padding_idx=0)
        if self.out_emb is not None:
            nn.init.normal_(self.out_emb.weight, std=0.02)
            with torch.no_grad():
                self.out_emb.weight[0].zero_()
        # The binary losses' intercept: one learned logit offset shared by every item, started at the best
        # constant logit log(beta / k) (where beta * sigmoid(-b) = k * sigmoid(b)). Why: BCE with k negatives wants
        # every negative logit far below zero (about -6 for gBCE's k = 256); without an intercept the model can only
        # get there through a common vector in the output table that the hidden state must point against, which
        # spends the hidden state's (normalised) length on "everything is unlikely" and learns slowly: demo gBCE
        # NDCG@10 0.078 untied without it, 0.23 with it (30 epochs). It moves every item's score alike, so
        # :meth:`score` leaves it out (rankings identical); sigmoid(score + out_bias) is gBCE's calibrated probability.
        self.out_bias = None
        if self.out_emb is not None and config.loss in ("bce", "gbce"):
            k, t = self._binary_k_t()
            start = math.log(gbce_beta(k, config.n_items, t) / k)
            self.out_bias = nn.Parameter(torch.full((), start))
        self.register_buffer("neg_probs", torch.ones(config.n_items), persistent=False)  # sampler weights

    def _dropout_hook(self, module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        return fast_dropout(output, self.config.dropout, self.training)

    @property
    def uses_time(self) -> bool:
        """Whether scoring needs each history's times plus the query time (the ``time_features`` option)."""
        return self.time_emb is not None

    # ----------------------------------------------------------------------------------------------- body
    def forward_hidden(self, input_ids: torch.Tensor, output_attentions: bool = False,
                       times: torch.Tensor | None = None) -> HiddenOutput:
        """Run the Transformer body; with ``output_attentions`` it switches to eager attention for the call.

        ``times`` (B, T + 1) int64 unix seconds (events, then the query time) feeds the time features; without it
        a time-aware model sees "unknown" times (no time signal), which only low-level probes should rely on."""
        input_ids = input_ids[:, -self.config.max_len:]  # (B, T) never longer than the position table
        real = input_ids != 0  # (B, T)
        x = item_dropout(self.item_emb(input_ids), self.config.item_dropout, self.training)  # (B, T, D)
        if self.time_emb is not None:
            x = x + self.time_emb(real, times)  # (B, T, D) added before scaling: same scale as the items
        x = x * math.sqrt(self.config.hidden_size)  # (B, T, D)
        x = self.emb_dropout(x)
        if self.config.positions == "rotary":
            position_ids = (real.cumsum(1) - 1).clamp_(min=0)  # (B, T) counts real events from the oldest
        else:
            after = real.flip(1).cumsum(1).flip(1)  # (B, T) real events at or after each position
            position_ids = (self.config.max_len - after).clamp_(0, self.config.max_len - 1)  # latest at max_len - 1
        mask = self._attention_mask(real, mask_dtype(x))  # (B, 1, T, T)
        return run_backbone(self.backbone, x, mask, position_ids, output_attentions)

    @staticmethod
    def _attention_mask(real: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Causal and padding mask, additive (0 / most negative). A padded query may see only itself, so no
        softmax row is empty (no NaN); real queries never see padding or the future."""
        t = real.shape[1]
        idx = torch.arange(t, device=real.device)
        causal = idx[None, :] <= idx[:, None]  # (T, T) key <= query
        allowed = causal[None] & (real[:, None, :] | torch.eye(t, dtype=torch.bool, device=real.device)[None])
        mask = torch.zeros(allowed.shape, dtype=dtype, device=real.device)  # (B, T, T)
        return mask.masked_fill_(~allowed, torch.finfo(dtype).min)[:, None]  # (B, 1, T, T)

    # ---------------------------------------------------------------------------------------------- train
    def forward(self, input_ids: torch.Tensor, targets: torch.Tensor,
                times: torch.Tensor | None = None) -> torch.Tensor:
        """Mean next-item loss over every position with a target (``targets`` 0 = no target).

        ``times`` (B, T + 1): the inputs' times then the last target's; column t + 1 is the query time of
        position t (the time of the event it predicts, never that event's item)."""
        hidden = self.forward_hidden(input_ids, times=times).hidden  # (B, T, D)
        where = targets[:, -hidden.shape[1]:] != 0  # (B, T)
        h = hidden[where]  # (N, D) only positions that predict something: the output layer is the big cost
        y = targets[:, -hidden.shape[1]:][where]  # (N,)
        if self.config.loss == "full":
            return full_softmax_cross_entropy(h, self.output_weights(), y, first_column=1,  # padding: no candidate
                                              label_smoothing=self.config.label_smoothing)
        if self.config.loss in ("bce", "gbce"):
            return self._binary_loss(h, y)
        return self._sampled_loss(h, y)

    def _binary_loss(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """BCE (one negative per positive, beta = 1) or gBCE (k negatives, beta from gbce_t): see
        :func:`seqrec_core.models.neural.binary_negatives_loss`."""
        k, t = self._binary_k_t()
        probs = self.neg_probs if self.config.negatives == "popularity" else None
        pool, pick = sample_negative_pool(self.config.n_items, h.shape[0], k, probs, h.device)  # (P,), (N, K)
        w = self.output_weights()  # (V + 1, D)
        pos_logit = (h * w[y]).sum(-1)  # (N,)
        neg_logit = (h @ w[pool].T).gather(1, pick)  # (N, K) via the (N, P) pool logits
        if self.out_bias is not None:
            pos_logit, neg_logit = pos_logit + self.out_bias, neg_logit + self.out_bias
        valid = pool[pick] != y[:, None]  # (N, K) an accidental hit is no negative
        return binary_negatives_loss(pos_logit, neg_logit, gbce_beta(k, self.config.n_items, t), valid)

    def _binary_k_t(self) -> tuple[int, float]:
        """Negatives per positive and gBCE's t: BCE is one negative with t = 0 (beta = 1)."""
        if self.config.loss == "bce":
            return 1, 0.0
        return self.config.num_negatives, float(self.config.gbce_t)

    def _sampled_loss(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Sampled softmax: each position's k negatives, drawn per position (from a per-step pool, as the binary
        losses), with the log-q correction (a constant for uniform negatives, so none then)."""
        k = self.config.num_negatives
        popular = self.config.negatives == "popularity"
        pool, pick = sample_negative_pool(self.config.n_items, h.shape[0], k, self.neg_probs if popular else None,
                                          h.device)  # (P,), (N, K)
        neg = pool[pick]  # (N, K) item ids
        w = self.output_weights()  # (V + 1, D)
        pos_logit = (h * w[y]).sum(-1)  # (N,)
        neg_logit = (h @ w[pool].T).gather(1, pick)  # (N, K) via the (N, P) pool logits
        if popular:
            log_q = torch.log(self.neg_probs / self.neg_probs.sum() * k)  # (V,)
            pos_logit, neg_logit = pos_logit - log_q[y - 1], neg_logit - log_q[neg - 1]
        neg_logit = neg_logit.masked_fill(neg == y[:, None], float("-inf"))  # accidental hits
        logits = torch.cat([pos_logit[:, None], neg_logit], dim=1).float()  # (N, 1 + K)
        return F.cross_entropy(logits, torch.zeros_like(y))

    def set_item_counts(self, counts: torch.Tensor) -> None:
        """Popularity for the popularity negative sampler: counts (n_items,) of training events per item."""
        self.neg_probs = counts.to(self.neg_probs).clamp(min=1.0)

    # ---------------------------------------------------------------------------------------------- infer
    def score(self, input_ids: torch.Tensor, times: torch.Tensor | None = None) -> torch.Tensor:
        """Scores (B, n_items + 1) for the item after the last column; column 0 (padding) is -inf.
        ``times`` (B, T + 1): needed by a time-aware model (its last column = the request time)."""
        hidden = self.forward_hidden(input_ids, times=times).hidden[:, -1]  # (B, D)
        scores = hidden @ self.output_weights().T  # (B, V + 1)
        scores[:, 0] = float("-inf")
        return scores

    def output_weights(self) -> torch.Tensor:
        """The output layer (n_items + 1, D): ``score = hidden @ output_weights().T``; row 0 = padding.

        Tied: the input item table. Untied: ``out_emb``, plus the projected title vector of a text-aware model
        (the same text part the inputs get, so an item's title reaches both sides and a title-only item can
        still be recommended)."""
        if self.out_emb is None:
            return self.item_emb.weight
        if self._output_text is not None:
            return self.out_emb.weight + self._output_text.item_matrix()  # (V + 1, D)
        return self.out_emb.weight

    def item_embeddings(self) -> torch.Tensor:
        """The INPUT item vectors (n_items + 1, D), row 0 = padding: what the embeddings page projects. With an
        untied output layer the scoring vectors differ: see :meth:`output_weights`."""
        return self.item_emb.weight
