"""The issue's reference model on our planted logs: does a plain rotary Transformer learn the pairs?

Issue 15 reports that "a plain 2-layer rotary Transformer with batch 64, lr 2e-3 and no item dropout" learned its
log's trigger -> response pairs in 300 s on a 2-core host. That log is not available, so this trains such a model
(written here from scratch, not with our SASRec: pre-LayerNorm blocks, rotary positions, GELU MLP, PyTorch's
default initialisation, an untied output layer, full softmax over every position) on one of our planted logs and
prints, after every epoch, the same measures as ``bench/longrange_curve.py``: the median rank of the held-out
planted responses with and without their trigger in the history, and the share in the top 10. Where this model
learns nothing in its budget, the log is at least as hard as the issue's was for it.

    python bench/longrange_reference.py --log '{"plantings": 8}' --budget 300 --threads 2   # alone on the machine
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from bench.machine import host_info  # noqa: E402
from seqrec_core.data.planted_log import PlantedLogConfig, make_planted_events  # noqa: E402
from seqrec_core.data.sequences import SequenceData, build_sequences  # noqa: E402
from seqrec_core.explain.planted import planted_cases, ranks_without_trigger  # noqa: E402


def rotate(x: torch.Tensor, positions: torch.Tensor, theta: float = 10_000.0) -> torch.Tensor:
    """Rotary positions on x (B, H, T, hd) for positions (B, T), interleaved pairs."""
    hd = x.shape[-1]
    inv = 1.0 / theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd)  # (hd/2,)
    angle = positions[..., None].float() * inv  # (B, T, hd/2)
    cos, sin = angle.cos()[:, None], angle.sin()[:, None]  # (B, 1, T, hd/2)
    even, odd = x[..., ::2], x[..., 1::2]
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], -1).flatten(-2)  # (B, H, T, hd)


class Block(nn.Module):
    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.out = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k = rotate(q, positions), rotate(k, positions)  # (B, H, T, hd) each
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        x = x + self.drop(self.out(a.transpose(1, 2).reshape(b, t, d)))  # (B, T, D)
        return x + self.drop(self.mlp(self.norm2(x)))


class PlainRotary(nn.Module):
    """Left-padded (B, T) item ids in; ``score`` gives (B, V + 1) for the next item (what NeuralScorer calls)."""

    uses_time = False

    def __init__(self, n_items: int, max_len: int, d: int = 64, layers: int = 2, heads: int = 2,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.config = SimpleNamespace(n_items=n_items, max_len=max_len)
        self.emb = nn.Embedding(n_items + 1, d, padding_idx=0)
        self.blocks = nn.ModuleList(Block(d, heads, dropout) for _ in range(layers))
        self.norm, self.head, self.drop = nn.LayerNorm(d), nn.Linear(d, n_items + 1), nn.Dropout(dropout)

    def hidden(self, ids: torch.Tensor) -> torch.Tensor:
        ids = ids[:, -self.config.max_len:]
        real = ids != 0  # (B, T)
        t = ids.shape[1]
        positions = (real.cumsum(1) - 1).clamp(min=0)  # (B, T)
        causal = torch.ones(t, t, dtype=torch.bool, device=ids.device).tril()
        eye = torch.eye(t, dtype=torch.bool, device=ids.device)
        mask = (causal[None] & (real[:, None, :] | eye[None]))[:, None]  # (B, 1, T, T) a padded query sees itself
        x = self.drop(self.emb(ids))  # (B, T, D)
        for block in self.blocks:
            x = block(x, positions, mask)
        return self.norm(x)

    def score(self, ids: torch.Tensor, times: torch.Tensor | None = None) -> torch.Tensor:
        scores = self.head(self.hidden(ids)[:, -1])  # (B, V + 1)
        scores[:, 0] = float("-inf")
        return scores


def training_windows(data: SequenceData, max_len: int) -> torch.Tensor:
    """(W, max_len + 1) left-padded windows cut from the end of each training sequence, not overlapping."""
    windows = []
    for u in range(data.n_users):
        seq = data.train_sequence(u)
        for end in range(len(seq), 1, -max_len):
            w = seq[max(0, end - max_len - 1):end]
            windows.append(np.pad(w, (max_len + 1 - len(w), 0)))
    return torch.as_tensor(np.stack(windows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--log", default="{}", help="planted-log options as JSON (PlantedLogConfig fields)")
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--budget", type=float, default=300, help="seconds of training (measuring not counted)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = leave as is)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    events, truth = make_planted_events(PlantedLogConfig(**json.loads(args.log)))
    data = build_sequences(events)
    windows = training_windows(data, args.max_len)
    model = PlainRotary(data.vocab.n_items, args.max_len, dropout=args.dropout)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    run = SimpleNamespace(model=model, vocab=data.vocab, max_len=args.max_len)
    print(json.dumps({"machine": host_info(), "torch_threads": torch.get_num_threads(), "args": vars(args),
                      "windows": len(windows)}), flush=True)
    trained, epoch = 0.0, 0
    while trained < args.budget:
        epoch += 1
        model.train()
        started = time.perf_counter()
        order = torch.randperm(len(windows))
        for i in range(0, len(windows), args.batch_size):
            w = windows[order[i:i + args.batch_size]]  # (B, T + 1)
            hidden = model.hidden(w[:, :-1])  # (B, T, D)
            keep = w[:, 1:] != 0  # (B, T) positions with a target
            loss = F.cross_entropy(model.head(hidden[keep]), w[:, 1:][keep])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if trained + time.perf_counter() - started >= args.budget:
                break
        trained += time.perf_counter() - started
        model.eval()
        with torch.no_grad():
            cases = planted_cases(run, data, truth, top_k=None)
            without = ranks_without_trigger(run, data, cases)
        print(f"epoch {epoch:3d}  {trained:6.0f} s  loss {loss.item():.3f}  median rank "
              f"{cases['response_rank'].median():5.1f} (without the trigger {np.median(without):5.1f})  top 10 "
              f"{(cases['response_rank'] <= 10).mean():.3f}", flush=True)


if __name__ == "__main__":
    main()
