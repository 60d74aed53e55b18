"""The report's explanation sections: how far back the model looks (long-range statistics, the truncation
ablation, the demo's planted truth), whether its explanations can be trusted (faithfulness, AOPC per method), and
one block per chosen user (history, top-K, attributions by method, attention, and what it all says in words)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from seqrec_core.report.content import ReviewContent, UserContent
from seqrec_core.report.render import Canvas, Section, note, para, table, text
from seqrec_core.report.sections_run import gap, provenance
from seqrec_core.report.sentences import heldout_sentence, item_text, when_text, why_sentence
from seqrec_core.viz.plot_explain import method_name

TOP_K_SHOWN = 10
TOP_EVENTS_SHOWN = 5


def longrange_section(content: ReviewContent, canvas: Canvas) -> Section:
    from seqrec_core.analysis.kinds_explain import load_longrange
    from seqrec_core.analysis.reach import get_context_reach
    from seqrec_core.viz.plot_explain_stats import (
        plot_attention_distance,
        plot_attribution_mass,
        plot_planted_check,
        plot_truncation_ablation,
    )

    section = Section("longrange", "How far back the model looks",
                      "Many users' predictions explained at once: does the attribution sit on the last few events "
                      "or 20+ steps back? And what does the model lose when it may see only its last k events?")
    reach = get_context_reach(content.run_dir, content.dataset.sequences, content.dataset.fingerprint,
                              content.files.max_len, content.files.config.get("model"))
    if reach.verdict != "not_measured":
        section.add(para(reach.message + (f" {reach.advice}" if reach.advice else ""), "finding"))
    part = content.parts["longrange"]
    if part.unit is None:
        section.add(gap(part, content))
    else:
        stats = load_longrange(part.unit)
        beyond = part.unit.info.get("share_mass_ge20")
        finding = (f"For {stats.share_top_ge20:.0%} of {stats.users:,} predictions the most supportive event is 20 or "
                   f"more steps back ({method_name(stats.method)})")
        finding += f"; {beyond:.0%} of all absolute attribution falls beyond 20 steps." if beyond is not None else "."
        section.add(para(finding, "finding"))
        figs = [canvas.figure(plot_attribution_mass(stats.by_lag, by="lag", share_top_ge20=stats.share_top_ge20,
                                                    users=stats.users, method=stats.method),
                              "Share of absolute attribution per lag bucket; a bar above its diamond means those "
                              "events weigh more than their number alone.")]
        if len(stats.by_time_gap):
            figs.append(canvas.figure(plot_attribution_mass(stats.by_time_gap, by="time", users=stats.users,
                                                            method=stats.method),
                                      "The same mass by how long before the prediction the events happened."))
        if len(stats.attention_distance):
            figs.append(canvas.figure(plot_attention_distance(stats.attention_distance),
                                      "Average distance, in events, between each position and what it attends to."))
        section.add(f'<div class="grid">{"".join(figs)}</div>', table(stats.by_lag, {
            "share_of_abs_attribution": ".1%", "share_of_events": ".1%"}), provenance(part))
    section.add("<h3>History-truncation ablation</h3>")
    trunc = content.parts["truncation"]
    if trunc.unit is None:
        section.add(gap(trunc, content))
    else:
        ablation = trunc.unit.table("ablation")
        gain = trunc.unit.info.get("gain_beyond_20")
        if gain is not None:
            section.add(para(f"Seeing the whole history instead of only the last 20 events changes test NDCG@10 by "
                             f"{gain:+.4f}: that is what older context is worth to this model.", "finding"))
        section.add(canvas.figure(plot_truncation_ablation(ablation), "Test NDCG@10 when the model may see only its "
                                  "last k events (full ranking)."),
                    table(ablation, {"NDCG@10": ".4f", "HR@10": ".4f", "mean_events_seen": ".1f"}),
                    provenance(trunc))
    planted = content.parts["planted"]
    if planted.skipped:
        return section
    section.add("<h3>Planted truth check</h3>")
    if planted.unit is None:
        return section.add(gap(planted, content))
    cases = planted.unit.table("cases")
    if len(cases):
        section.add(para(f"The demo log hides trigger → response pairs 20–40 events apart. In {len(cases):,} cases "
                         f"where the model ranks a planted response in its top 10, IG puts the planted trigger among "
                         f"the 3 most supportive events in {float(cases['hit'].mean()):.0%} of them.", "finding"))
    else:
        section.add(note("No cases: the model ranks no planted response in its top 10, so it has not learned the "
                         "long-range pairs."))
    return section.add(canvas.figure(plot_planted_check(cases), "Where the planted trigger ranks among the user's "
                                     "events by IG attribution; blue = hit."), provenance(planted))


def faithfulness_section(content: ReviewContent, canvas: Canvas) -> Section:
    from seqrec_core.analysis.kinds_explain import load_faithfulness
    from seqrec_core.viz.plot_explain_stats import plot_faithfulness

    section = Section("faithfulness", "Can the explanations be trusted",
                      "Remove each method's top-k events (deletion) or give the model only those (insertion) and "
                      "re-score the target. A faithful explanation moves the score more than a random order does; "
                      "AOPC is the mean gap to k = 0 (higher = more faithful).")
    part = content.parts["faithfulness"]
    if part.unit is None:
        return section.add(gap(part, content))
    faith = load_faithfulness(part.unit)
    aopc = faith.aopc.pivot_table(index="method", columns="kind", values="aopc").reset_index()
    aopc.insert(1, "name", [method_name(m) for m in aopc["method"]])
    if "deletion" in aopc:
        best = aopc[aopc["method"] != "random"].sort_values("deletion", ascending=False).iloc[0]
        random = aopc[aopc["method"] == "random"]
        finding = f"On deletion, {best['name']} is the most faithful (AOPC {best['deletion']:.3f})"
        if len(random):
            finding += f"; a random order reaches {float(random['deletion'].iloc[0]):.3f}"
        section.add(para(finding + f" ({faith.users:,} users, k up to {faith.max_k}).", "finding"))
    section.add(table(aopc, {"deletion": ".3f", "insertion": ".3f"}))
    figs = [canvas.figure(plot_faithfulness(faith.curves, faith.aopc, kind), f"Mean target score over {faith.users:,} "
                          f"users as top events are {'removed' if kind == 'deletion' else 'added'}.")
            for kind in ("deletion", "insertion")]
    return section.add(f'<div class="grid">{"".join(figs)}</div>', provenance(part))


def users_section(content: ReviewContent, canvas: Canvas) -> Section:
    section = Section("users", "Explained users",
                      "For each chosen user: the history, the model's top recommendations for the held-out last "
                      "event, which past events drive the top recommendation by each method, and the attention.")
    shown = [p for p in (content.parts.get(k) for k in ("recommendations", "explanations", "attention"))
             if p is not None and p.unit is not None]
    for part in shown:
        section.add(provenance(part))
    for kind in ("recommendations", "explanations", "attention"):
        part = content.parts.get(kind)
        if part is not None and part.skipped:
            section.add(note(f"{kind.capitalize()}: not applicable: {part.skipped}.", skip=True))
    for user in content.users:
        section.add(_user_block(content, user, canvas))
    return section


def _topk_table(recs: pd.DataFrame, held: dict | None) -> pd.DataFrame:
    shown = recs.head(TOP_K_SHOWN)[["rank", "item_id", "title", "category", "score"]].copy()
    target = None if not held else str(held.get("item_id"))
    shown["held-out?"] = ["yes" if str(i) == target else "" for i in shown["item_id"]]
    return shown


def _top_events(attrs: dict, first: str) -> pd.DataFrame:
    """The events the first method ranks highest, with every method's attribution and rank for them."""
    a = attrs[first]
    scores = np.asarray(a.scores, dtype=float)
    order = np.lexsort((a.lags, -scores))[:TOP_EVENTS_SHOWN]
    seconds = a.seconds_before
    rows = []
    for i in order:
        row = {"lag": int(a.lags[i]), "when": when_text(int(a.lags[i]), None if seconds is None else
                                                        float(seconds[i])),
               "item": item_text(a.titles[i], a.item_ids[i]), "item_id": a.item_ids[i]}
        for method, other in attrs.items():
            if len(other.scores) == len(scores):
                row[method_name(method)] = f"{float(other.scores[i]):+.3f}"
        rows.append(row)
    return pd.DataFrame(rows)


def _user_block(content: ReviewContent, u: UserContent, canvas: Canvas) -> str:
    from seqrec_core.viz.plot_explain import (
        attribution_table,
        plot_attention_heatmap,
        plot_last_attention,
        plot_method_comparison,
    )
    from seqrec_core.viz.plot_recommendations import plot_user_timeline

    n_items = content.dataset.sequences.vocab.n_items
    blocks = [f'<div class="user" id="user-{_anchor(u.user)}"><h3>{text("User " + u.user)}</h3>']
    attrs = u.attributions
    first = "ig" if "ig" in attrs else next(iter(attrs), None)
    if first is not None:
        blocks.append(para(why_sentence(attrs[first], {m: a for m, a in attrs.items() if m != first}), "finding"))
    held_text = heldout_sentence(u.held, n_items)
    if held_text:
        blocks.append(para(held_text))
    blocks += [note(n) for n in u.notes]
    held_id = None if not u.held else u.held.get("item_id")
    blocks.append(canvas.figure(plot_user_timeline(u.timeline, heldout_item=held_id),
                                f"{len(u.timeline):,} events in order, one lane per category; the star is the "
                                "held-out test event the model had to predict."))
    if u.recs is not None:
        blocks.append(f"<h3>Top {TOP_K_SHOWN} (seen items excluded)</h3>" + table(_topk_table(u.recs, u.held),
                                                                                  {"score": ".3f"}))
    if first is not None:
        methods = list(attrs)
        frame = attribution_table({m: a.to_frame() for m, a in attrs.items()})
        target = attrs[first]
        blocks.append(f"<h3>{text('Why ' + item_text(target.target_title, target.target_item))}</h3>")
        blocks.append(canvas.figure(plot_method_comparison(frame, methods), "One row per method, one bar per past "
                                    "event (latest on the right); numbers mark each method's three most supportive "
                                    "events, orange bars push against the target."))
        blocks.append(table(_top_events(attrs, first)))
        if target.convergence_delta is not None and first == "ig":
            blocks.append(para(f"IG: {target.steps} steps, baseline “{target.baseline}” (score "
                               f"{target.baseline_score:.3f}), convergence delta {target.convergence_delta:+.4f}.",
                               "provenance"))
    maps = u.attention
    if maps is not None and first is not None:
        history = attrs[first].to_frame()
        if len(history) == len(maps.items):
            matrix = maps.rollout()
            n = len(maps.items)
            events = matrix[:n, :n]
            if maps.appended:
                events = events / np.maximum(events.sum(axis=1, keepdims=True), 1e-12)
            causal = content.files.family != "bert4rec"
            blocks.append(canvas.figure(plot_attention_heatmap(events, history, view="rollout", causal=causal),
                                        "Attention rollout: row = the position attending, column = the event "
                                        "attended to; each row sums to 1."))
            blocks.append(canvas.figure(plot_last_attention(maps.prediction_row(matrix), history, view="rollout"),
                                        "The prediction point's attention over the history."))
    blocks.append("</div>")
    return "".join(blocks)


def _anchor(user: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in user)[:60]
