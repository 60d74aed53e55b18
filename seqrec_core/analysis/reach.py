"""How far back a trained model looks, in one sentence, from its stored analysis: what the Train page and the
``train`` command say right after training (issue 15).

Two measurements decide it, both stored with the run: the truncation ablation (test NDCG@10 with the whole
window against the last 20 events only: does older context change the ranking?) and the long-range statistics
(the share of IG attribution on events more than 20 steps back: does the explanation point there?). The
truncation gain is the verdict; the attribution share is reported beside it, because attribution can spread
over old events that barely move the ranking (the demo's learned-positions run: 53% of the attribution beyond
20 steps, +3% NDCG@10 from them). When the model uses only recent events although many users have longer
histories in its window, the advice says what to try.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from seqrec_core.data.sequences import MIN_EVAL_EVENTS

FAR = 20  # "far back" = more than this many events before the prediction point
USES_FAR_GAIN = 0.05  # relative NDCG@10 gain from events beyond the last FAR that counts as using them
LONG_HISTORY_SHARE = 0.2  # below this share of users with > FAR events in the window, histories count as short

Verdict = Literal["uses_far", "recent_only", "short_histories", "not_measured"]


@dataclass(frozen=True)
class ContextReach:
    """The verdict and the numbers behind it (JSON-able: the CLI prints it, the Train page shows it)."""

    verdict: Verdict
    message: str
    advice: str | None
    ndcg_all: float | None  # test NDCG@10 with the model's whole window
    ndcg_recent: float | None  # ... with only the last FAR events
    relative_gain: float | None  # (all - recent) / recent
    attribution_beyond: float | None  # share of |IG| on events more than FAR steps back
    long_history_share: float | None  # share of test users with more than FAR events in the model's window
    max_len: int

    def to_dict(self) -> dict:
        return asdict(self)


def long_history_share(data, max_len: int) -> float:  # noqa: ANN001 - SequenceData
    """Share of users whose test prediction has more than FAR events inside a window of ``max_len``. Computed from
    the sequence lengths (a test history is a user's events but the last), not by slicing every history: the
    Explain page asks on each rerun."""
    lengths = data.lengths()
    lengths = lengths[lengths >= MIN_EVAL_EVENTS] - 1  # (U_test,) as data.split("test") cuts them
    if len(lengths) == 0:
        return 0.0
    return float((np.minimum(lengths, max_len) > FAR).mean())


def describe_reach(truncation: pd.DataFrame | None, attribution_beyond: float | None, long_share: float | None,
                   max_len: int, model: dict | None = None) -> ContextReach:
    """The verdict from the truncation table (columns k, NDCG@10; k "all" and str(FAR) used), the attribution
    share beyond FAR and the share of users with long windows; ``model`` (the run's model config) tailors the
    advice (positions, dropout)."""
    model = model or {}
    rows = truncation.set_index("k")["NDCG@10"] if truncation is not None and len(truncation) else pd.Series()
    far = str(FAR)
    ndcg_all = float(rows["all"]) if "all" in rows else None
    ndcg_recent = float(rows[far]) if far in rows else None
    gain = None
    if ndcg_all is not None and ndcg_recent is not None and ndcg_recent > 0:
        gain = (ndcg_all - ndcg_recent) / ndcg_recent
    numbers = dict(ndcg_all=ndcg_all, ndcg_recent=ndcg_recent, relative_gain=gain,
                   attribution_beyond=attribution_beyond, long_history_share=long_share, max_len=int(max_len))
    attr_text = (f"; {attribution_beyond:.0%} of the attribution (IG) falls on events more than {FAR} back"
                 if attribution_beyond is not None else "")
    if max_len <= FAR:
        return ContextReach("short_histories", f"The model sees only its last {max_len} events (max_len), so it "
                            f"cannot look further back{attr_text}.",
                            f"If older events should matter in this log, train with a longer history (--max-len "
                            f"{4 * FAR} or more).", **numbers)
    if long_share is not None and long_share < LONG_HISTORY_SHARE:
        return ContextReach("short_histories", f"Only {long_share:.0%} of the users have more than {FAR} events "
                            f"in the model's window, so there is little far-back context to use{attr_text}.",
                            None, **numbers)
    if gain is None:
        return ContextReach("not_measured", "How far back the model looks is not measured yet: the run's "
                            "truncation analysis is missing (python -m seqrec_core analyze --run RUN --parts "
                            "longrange).", None, **numbers)
    change = f"test NDCG@10 {ndcg_recent:.3f} with the last {FAR} events, {ndcg_all:.3f} with all {max_len}"
    if gain >= USES_FAR_GAIN:
        return ContextReach("uses_far", f"The model looks back further than {FAR} events: {change} "
                            f"({gain:+.0%}){attr_text}.", None, **numbers)
    users = f"{long_share:.0%} of the users" if long_share is not None else "many users"
    tries = ["a longer training (a larger --time-budget, or a GPU)"]
    if model.get("family", "sasrec") == "sasrec" and (float(model.get("dropout") or 0) > 0.1
                                                      or float(model.get("item_dropout") or 0) > 0):
        tries.append(f"less regularisation (this run: dropout {model.get('dropout')}, item dropout "
                     f"{model.get('item_dropout', 0)}; with --dropout 0.1 --item-dropout 0 SASRec learned planted "
                     "pairs 20-40 events apart that 0.4 / 0.2 did not)")
    if model.get("positions") == "learned":
        tries.append("rotary positions (--positions rotary), which learn lags better than learned ones")
    advice = ("If this log has dependencies further back (a purchase that predicts a need weeks later), try "
              + "; ".join(tries) + ". If it has none, this is the right answer: recent events are what predicts "
              "here.")
    return ContextReach("recent_only", f"The model relies on the last {FAR} events: {change} ({gain:+.0%}), "
                        f"although {users} have longer histories in its window{attr_text}.", advice, **numbers)


def get_context_reach(run_dir: str | Path, data, fingerprint: str, max_len: int,  # noqa: ANN001 - SequenceData
                      model: dict | None = None) -> ContextReach:
    """The reach of the run in ``run_dir`` from its stored (fresh) truncation and long-range units at their
    defaults; ``not_measured`` when the truncation unit is missing or stale."""
    from seqrec_core.analysis.lookup import find

    truncation = find(run_dir, "truncation", None, fingerprint)
    longrange = find(run_dir, "longrange", None, fingerprint)
    table = truncation.unit.table("ablation") if truncation.fresh else None
    beyond = longrange.unit.info.get("share_mass_ge20") if longrange.fresh else None
    return describe_reach(table, None if beyond is None else float(beyond), long_history_share(data, max_len),
                          max_len, model)
