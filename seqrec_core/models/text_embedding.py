"""The model side of item text: a frozen per-item text matrix with a trainable projection, added to a family's
learned id vectors (:class:`TextAwareItemEmbedding`). How the matrix is made (encoder, cache, catalogue) lives in
:mod:`seqrec_core.models.text_features`, which re-exports these names."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from seqrec_core.errors import InputError


class TextItemFeatures(nn.Module):
    """A frozen (n_items + 1, d_text) text matrix and a trainable projection into the model's width.

    The matrix is a persistent buffer: it is saved with the weights, so a loaded run needs no encoder. The
    projection has no bias, so padding and items without a title add exactly zero."""

    def __init__(self, n_items: int, d_text: int, hidden: int) -> None:
        super().__init__()
        self.register_buffer("text", torch.zeros(n_items + 1, d_text), persistent=True)  # (V + 1, d_text)
        self.proj = nn.Linear(d_text, hidden, bias=False)
        nn.init.normal_(self.proj.weight, std=0.02)  # unit-norm inputs -> outputs at item_emb's 0.02 scale

    def set_matrix(self, matrix: torch.Tensor | np.ndarray) -> None:
        """Put the encoder's matrix (from :func:`seqrec_core.models.text_features.item_text_matrix`) into the
        buffer (before training)."""
        m = torch.as_tensor(matrix, dtype=torch.float32)
        if tuple(m.shape) != tuple(self.text.shape):
            raise InputError(f"item text matrix has shape {tuple(m.shape)} but the model expects "
                             f"{tuple(self.text.shape)} (n_items + 1, text_dim); re-encode for this catalogue")
        with torch.no_grad():
            self.text.copy_(m.to(self.text.device))
            self.text[0].zero_()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, T) item ids -> (B, T, hidden) text part of each input item's vector."""
        return self.proj(self.text[ids])  # (B, T, hidden)

    def item_matrix(self) -> torch.Tensor:
        """(n_items + 1, hidden): the text part of every item's output vector (tied scoring)."""
        return self.proj(self.text)  # (V + 1, hidden)


class TextAwareItemEmbedding(nn.Module):
    """Drop-in for a model's ``item_emb`` (nn.Embedding): learned id vector + projected text vector.

    It keeps the two things callers use, ``module(ids)`` and ``.weight`` (the full (n_items + 1, D) table, here
    the sum), so the tied output layer, the embeddings page and the explainers (which swap ``item_emb`` and
    read ``item_emb.weight``) see one item vector per item with no change on their side."""

    def __init__(self, base: nn.Embedding, text: TextItemFeatures) -> None:
        super().__init__()
        self.base = base
        self.text = text
        self._hold_hooks: list[torch.utils.hooks.RemovableHandle] = []

    def hold_untrained(self, untrained: torch.Tensor, *output_tables: nn.Parameter) -> None:
        """Keep the id vectors of items that training never shows (``untrained`` (n_items + 1,) bool) at their
        initial values, so such an item is scored by its title. ``output_tables``: a model's separate output
        table(s) (SASRec's untied ``out_emb``), whose rows for those items are held the same way.

        Why: a never-trained item is a negative in every softmax, which pushes its id vector away from every
        history until it cancels the title part, the more the longer training runs (a re-listed product with a
        known title fell out of its users' top 10). Its gradient rows are zeroed instead; everything else, the
        shared title projection included, trains as before."""
        for hook in self._hold_hooks:
            hook.remove()
        rows = untrained.to(device=self.base.weight.device, dtype=torch.bool)[:, None]  # (V + 1, 1)
        self._hold_hooks = [table.register_hook(lambda grad: grad.masked_fill(rows, 0.0))
                            for table in (self.base.weight, *output_tables)]

    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight + self.text.item_matrix()  # (V + 1, D)

    @property
    def num_embeddings(self) -> int:
        return self.base.num_embeddings

    @property
    def padding_idx(self) -> int | None:
        return self.base.padding_idx

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.base(ids) + self.text(ids)  # (B, T, D)


def text_aware_embedding(item_emb: nn.Embedding, n_items: int, text_encoder: str | None,
                         text_dim: int) -> nn.Module:
    """A family's ``item_emb`` for its config's two text fields: unchanged without text, else wrapped in
    :class:`TextAwareItemEmbedding` (so a tied output layer, ``item_emb.weight``, carries the text part too).

    Why one helper: every family wires text the same way, and a config that names only one of the two fields is
    refused alike (``text_dim`` comes from the encoder in ``text_features.with_item_text``, so a model built with
    an encoder but no width was not built by a train job). The caller's ``check_text_options`` has checked the
    values."""
    if not text_encoder and not text_dim:
        return item_emb
    if not (text_encoder and text_dim):
        raise InputError("text_encoder and text_dim go together: train through run_training_job (it sets "
                         "text_dim from the encoder) or leave both unset")
    return TextAwareItemEmbedding(item_emb, TextItemFeatures(n_items, text_dim, item_emb.embedding_dim))
