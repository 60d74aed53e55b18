"""What every neural family shares: left padding, dropout, the full-softmax loss kernel, sampled-negative
losses and the Scorer adapter. Training windows and batches are in :mod:`seqrec_core.models.batches`."""
from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch import nn

from seqrec_core.models.time_features import check_times, pad_times_left


def pad_left(histories: Sequence[np.ndarray], max_len: int, width: int | None = None) -> torch.Tensor:
    """Left-pad (0) and left-truncate histories to their last ``max_len`` events.

    Returns a LongTensor (B, W) with W = ``width`` or, by default, the longest kept history (at least 1), so
    the last column is always each history's latest event (the prediction point).
    """
    lengths = np.fromiter((min(len(h), max_len) for h in histories), dtype=np.int64, count=len(histories))
    w = int(width) if width is not None else max(1, int(lengths.max(initial=0)))
    out = np.zeros((len(histories), w), dtype=np.int64)  # (B, W)
    for row, (h, n) in enumerate(zip(histories, lengths, strict=True)):
        n = min(int(n), w)
        if n:
            out[row, w - n:] = np.asarray(h[-n:], dtype=np.int64)
    return torch.from_numpy(out)


@torch.no_grad()
def prediction_states(model: nn.Module, histories: Sequence[np.ndarray], times: Sequence[np.ndarray] | None = None,
                      batch_size: int = 256) -> torch.Tensor:
    """(N, D) float: the model's hidden state at each history's prediction point (what it scores the catalogue
    with), batched in the given order on the model's device. ``times`` (time-aware models only): per history its
    events' unix seconds followed by the request time. The caller sets train/eval mode."""
    max_len = int(model.config.max_len)
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(histories), batch_size):
        ids = pad_left(histories[start:start + batch_size], max_len).to(device)  # (b, T)
        if times is None:
            hidden = model.forward_hidden(ids).hidden[:, -1]  # (b, D)
        else:
            tt = pad_times_left(times[start:start + batch_size], max_len, ids.shape[1])  # (b, T + 1)
            hidden = model.forward_hidden(ids, times=tt.to(device)).hidden[:, -1]  # (b, D)
        out.append(hidden.float())
    return torch.cat(out) if out else torch.zeros(0, 0)


def keep_mask(shape: torch.Size | tuple[int, ...], p: float, device: torch.device) -> torch.Tensor:
    """Bool mask, True with probability 1 - p (to within 2^-16), drawn from torch's global generator.

    Why not ``rand_like``: torch's CPU generator costs the same per draw whatever the width, so one 64-bit draw
    cut into four 16-bit uniforms is ~4x cheaper than four float draws, and ~20x cheaper than ``bernoulli_``
    (which ``F.dropout`` and the attention kernels use on CPU). Dropout RNG was 4-30% of a SASRec step.
    """
    n = math.prod(shape)
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(-2**63, None)  # full 64 random bits
    lanes = words.view(torch.int16)[:n].view(shape)  # (...) uniform on [-32768, 32767]
    return lanes >= (-32768 + round(p * 65536))


def fast_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout; on CPU with :func:`keep_mask` and one autograd multiply (the scale folded into it)."""
    if not training or p <= 0.0:
        return x
    if x.device.type != "cpu":
        return torch.nn.functional.dropout(x, p, True)
    scale = keep_mask(x.shape, p, x.device).to(x.dtype).mul_(1.0 / (1.0 - p))  # (...) 0 or 1 / (1 - p)
    return x * scale


def item_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Blank whole events: in training, each event's input vector (a row of x (B, T, D)) is zeroed with
    probability p and the rest are left unscaled (an item vector is an identity, not a sum to keep level).

    Why: dropout on single units leaves every past item recognisable, so a model trained on sparse logs learns
    to lean on the one or two items it has seen most with a target; hiding whole items makes it use the rest of
    the history (word dropout, for item histories). On Beauty SASRec it lifted test NDCG@10 by 4-9% per seed
    (bench/RESULTS.md)."""
    if not training or p <= 0.0:
        return x
    kept = torch.rand(x.shape[:2], device=x.device) >= p  # (B, T)
    return x * kept[..., None].to(x.dtype)  # (B, T, D)


class FastDropout(nn.Module):
    """Drop-in for ``nn.Dropout`` using :func:`fast_dropout`."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


_EXP_SAFE = 60.0  # exp(60) * 1e12 items still fits in float32: below this logit bound no max shift is needed
_SCRATCH_ELEMENTS = 1 << 24  # 64 MB of float32 at most for the logits scratch buffer
_scratch_cache = threading.local()


def _scratch(rows: int, cols: int, device: torch.device) -> torch.Tensor:
    """A (rows, cols) float32 view of a per-thread buffer kept between calls: fresh memory costs page faults."""
    buf = getattr(_scratch_cache, "buf", None)
    if buf is None or buf.device != device or buf.numel() < rows * cols:
        buf = torch.empty(rows * cols, dtype=torch.float32, device=device)
        _scratch_cache.buf = buf
    return buf[:rows * cols].view(rows, cols)


class _ChunkedSoftmaxCE(torch.autograd.Function):
    """Full-softmax cross-entropy whose gradients are computed chunk by chunk during the forward pass.

    Why: on a CPU, materialising the (N, V) logits, their log-softmax and its gradient means three fresh
    tensors of tens of MB per step, and page-faulting fresh memory costs more than the matrix products. Here one
    (chunk, V) buffer is reused: logits -> softmax -> (softmax - onehot) -> dh, dW, all while it is in cache.
    The 1 / N of the mean is folded into the products, so the usual ``loss.backward()`` (gradient 1) hands the
    gradients on without another pass over the (V, D) table.
    """

    @staticmethod
    def forward(ctx, h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk: int,
                first_column: int, smoothing: float) -> torch.Tensor:
        n = h.shape[0]
        h32, w32 = h.float(), weight.float()
        # Label smoothing: the target distribution is (1 - eps) onehot + eps / C on the C candidates. Its uniform
        # part adds -eps / C * sum_j W_j to every grad_h row and -eps / C * sum_i h_i to every candidate row of grad_w
        # (rank one, once per call), so the chunks only change how much is taken off at the target.
        n_cand = w32.shape[0] - first_column
        col_sum = w32[first_column:].sum(0) if smoothing else None  # (D,)
        grad_h = torch.empty_like(h32)  # (N, D)
        grad_w = torch.zeros_like(w32)  # (V, D)
        chunk = max(16, min(chunk, _SCRATCH_ELEMENTS // w32.shape[0]))  # huge catalogues: fewer rows per chunk
        buf = _scratch(min(chunk, n), w32.shape[0], h.device)  # (C, V) reused across chunks and steps
        total = torch.zeros((), dtype=torch.float64, device=h.device)
        # |logit| <= |h_i| |w_j|. While that bound is small, exp cannot overflow, so the softmax's max pass and its
        # division pass over the (c, V) buffer are skipped: exp, row sums, and 1 / sum applied to D-wide rows.
        unshifted = float(h32.norm(dim=1).max()) * float(w32[first_column:].norm(dim=1).max()) <= _EXP_SAFE
        for start in range(0, n, chunk):
            hc = h32[start:start + chunk]  # (c, D)
            yc = targets[start:start + chunk]  # (c,)
            logits = buf[:hc.shape[0]]  # (c, V)
            torch.mm(hc, w32.T, out=logits)
            if first_column:
                logits[:, :first_column] = -math.inf  # the padding row is no candidate
            rows = torch.arange(hc.shape[0], device=h.device)
            if unshifted:
                probs = logits.exp_()  # (c, V) unnormalised: s_i * softmax
                sums = probs.sum(1)  # (c,)
                picked = probs[rows, yc] / sums  # (c,) the targets' probabilities
                probs[rows, yc] -= sums * (1.0 - smoothing)  # s_i * (softmax - (1 - eps) onehot)
                scale = 1.0 / (sums * n)  # (c,) the 1 / s_i and the mean's 1 / N, on D-wide rows
            else:
                probs = torch.softmax(logits, dim=1, out=logits)  # (c, V) in place: one fused pass, no new memory
                picked = probs[rows, yc].clone()  # (c,)
                probs[rows, yc] -= 1.0 - smoothing  # d loss_i / d logits_i, but the uniform part
                scale = torch.full((hc.shape[0],), 1.0 / n, device=h.device)  # (c,)
            # The loss is only reported (the gradient is exact); clamp keeps a hopeless target finite.
            log_p = picked.clamp_min(1e-45).log()  # (c,)
            if smoothing:  # sum_j log p_j = h . sum_j W_j - C lse, with lse = logit_y - log p_y
                lse = (hc * w32[yc]).sum(1) - log_p  # (c,)
                log_p = (1.0 - smoothing) * log_p - smoothing * lse + (smoothing / n_cand) * (hc @ col_sum)
            total -= log_p.sum(dtype=torch.float64)
            torch.mm(probs, w32, out=grad_h[start:start + chunk]).mul_(scale[:, None])  # (c, D)
            grad_w.addmm_(probs.T, hc * scale[:, None])  # (V, D)
        if smoothing:
            grad_h -= (smoothing / n_cand / n) * col_sum  # (N, D)
            grad_w[first_column:] -= (smoothing / n_cand / n) * h32.sum(0)  # (V, D)
        ctx.save_for_backward(grad_h, grad_w)
        ctx.dtypes = (h.dtype, weight.dtype)
        return (total / n).to(torch.float32)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        grad_h, grad_w = ctx.saved_tensors
        if grad_out.item() != 1.0:  # a scaled or weighted loss; plain backward() skips two passes here
            grad_h, grad_w = grad_h * grad_out, grad_w * grad_out
        return grad_h.to(ctx.dtypes[0]), grad_w.to(ctx.dtypes[1]), None, None, None, None


def full_softmax_cross_entropy(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                               chunk: int = 256, first_column: int = 0, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy of ``softmax(h @ weight.T)`` against ``targets`` (rows of ``weight``), optionally
    label-smoothed over the candidates (as ``F.cross_entropy(..., label_smoothing=...)``).

    h (N, D), weight (V, D), targets (N,). Rows of ``weight`` before ``first_column`` are no candidates (pass the
    whole item table with ``first_column=1`` and 1-based targets: slicing off the padding row instead costs a
    (V, D) zero-fill and copy in its backward). On CPU the chunked fused kernel above; elsewhere plain
    ``F.cross_entropy`` (GPUs have no page-fault problem and autocast handles precision).
    """
    if h.shape[0] == 0:
        return h.sum() * 0.0 + weight.sum() * 0.0
    if h.device.type == "cpu":
        with torch.autocast("cpu", enabled=False):  # under bf16 autocast too, the kernel's products stay fp32
            return _ChunkedSoftmaxCE.apply(h, weight, targets, chunk, first_column, float(label_smoothing))
    return dense_cross_entropy(h, weight, targets, first_column, label_smoothing)


def dense_cross_entropy(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                        first_column: int = 0, label_smoothing: float = 0.0) -> torch.Tensor:
    """The GPU form of :func:`full_softmax_cross_entropy`: whole (N, V) logits, ``F.cross_entropy`` in float32 on
    the candidate columns (a sliced view: the smoothing's uniform part must not include the padding column)."""
    logits = h @ weight.T  # (N, V)
    return torch.nn.functional.cross_entropy(logits[:, first_column:].float(), targets - first_column,
                                             label_smoothing=label_smoothing)


# ------------------------------------------------------------------------------ BCE / gBCE with sampled negatives
NEGATIVE_POOL = 1024  # candidates drawn per step; each positive's negatives are drawn from them


def sample_negative_pool(n_items: int, n_rows: int, k: int, probs: torch.Tensor | None,
                         device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """k negatives per row, as a shared pool of item ids (P,) and per-row picks into it (N, K).

    Why a pool: gathering N x K item vectors (tens of thousands of positions x 256 negatives x D) costs hundreds
    of MB per step on a CPU; one (N, P) logit block against P pooled candidates costs a few. Each negative is
    still drawn from ``probs`` (uniform when None) marginally; rows merely share candidates."""
    size = max(NEGATIVE_POOL, 2 * k)
    if probs is None:
        pool = torch.randint(1, n_items + 1, (size,), device=device)  # (P,)
    else:
        pool = torch.multinomial(probs.to(device), size, replacement=True) + 1  # (P,)
    pick = torch.randint(0, size, (n_rows, k), device=device)  # (N, K)
    return pool, pick


def gbce_beta(k: int, n_items: int, t: float) -> float:
    """gSASRec's power on the positive probability: beta = alpha * (t * (1 - 1/alpha) + 1/alpha) with the sampling
    rate alpha = k / (n_items - 1); t = 0 gives beta = 1 (plain BCE), t = 1 gives beta = alpha (calibrated)."""
    alpha = min(1.0, k / max(n_items - 1, 1))
    return alpha * (t * (1.0 - 1.0 / alpha) + 1.0 / alpha)


def binary_negatives_loss(pos_logit: torch.Tensor, neg_logit: torch.Tensor, beta: float,
                          valid: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over positions of the gBCE loss (Petrov & Macdonald 2023, eq. 8):
    -(1 / (k + 1)) * (log sigmoid(s+)^beta + sum_j log(1 - sigmoid(s-_j))).

    log sigmoid(s)^beta = -beta * softplus(-s), so this equals their transformed-logit BCE exactly, without the
    float64 clamps. pos_logit (N,), neg_logit (N, K), valid (N, K) False = not a negative (accidental hit)."""
    if pos_logit.shape[0] == 0:
        return pos_logit.sum() * 0.0 + neg_logit.sum() * 0.0
    pos = beta * torch.nn.functional.softplus(-pos_logit.float())  # (N,)
    neg = torch.nn.functional.softplus(neg_logit.float())  # (N, K)
    if valid is not None:
        neg = neg * valid
    return ((pos + neg.sum(1)) / (neg_logit.shape[1] + 1)).mean()


class NeuralScorer:
    """Adapts a trained neural model (anything with ``score(input_ids)``) to the :class:`Scorer` protocol."""

    def __init__(self, model: nn.Module, max_len: int, device: torch.device | str = "cpu", batch_size: int = 256,
                 output: Literal["numpy", "torch"] = "numpy", name: str | None = None) -> None:
        self.model = model
        self.max_len = int(max_len)
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.output = output  # "torch" keeps scores on the device for evaluation during training
        self.name = name or getattr(getattr(model, "config", None), "family", type(model).__name__.lower())

    @property
    def uses_time(self) -> bool:
        """True when the model needs times (callers then pass ``times`` to :meth:`score_histories`)."""
        return bool(getattr(self.model, "uses_time", False))

    @torch.no_grad()
    def score_histories(self, histories: list[np.ndarray], times: list[np.ndarray] | None = None) -> np.ndarray:
        """Scores (B, n_items + 1), float32, column 0 = -inf; histories longer than max_len keep their tail.

        Histories are scored in length-sorted chunks (at most ``batch_size`` rows and about
        ``batch_size * 16`` positions each), so one long history does not pad a whole batch to max_len.
        ``times``: one int64 array per history, its events' unix seconds followed by the query (request) time;
        required by a time-aware model (InputError without), ignored by the others.
        """
        n_cols = int(self.model.config.n_items) + 1
        use_time = self.uses_time
        if use_time:
            times = check_times(histories, times, f"model '{self.name}'")
        if not histories:
            return torch.empty(0, n_cols) if self.output == "torch" else np.empty((0, n_cols), np.float32)
        lengths = np.fromiter((min(len(h), self.max_len) for h in histories), dtype=np.int64, count=len(histories))
        order = np.argsort(lengths, kind="stable")
        was_training = self.model.training
        self.model.eval()
        try:
            out = torch.empty(len(histories), n_cols, dtype=torch.float32, device=self.device)  # (B, V + 1)
            budget = self.batch_size * 16
            start = 0
            while start < len(order):
                width = max(int(lengths[order[start]]), 1)
                stop = start + 1
                while stop < len(order) and stop - start < self.batch_size and \
                        (stop - start + 1) * max(int(lengths[order[stop]]), 1) <= max(budget, width):
                    stop += 1
                rows = order[start:stop]
                ids = pad_left([histories[i] for i in rows], self.max_len)  # (b, W)
                if use_time:
                    t = pad_times_left([times[i] for i in rows], self.max_len, ids.shape[1])  # (b, W + 1)
                    scores = self.model.score(ids.to(self.device), times=t.to(self.device))  # (b, V + 1)
                else:
                    scores = self.model.score(ids.to(self.device, non_blocking=True))  # (b, V + 1)
                out[torch.from_numpy(rows).to(self.device)] = scores.float()
                start = stop
        finally:
            self.model.train(was_training)
        return out if self.output == "torch" else out.cpu().numpy()  # type: ignore[return-value]
