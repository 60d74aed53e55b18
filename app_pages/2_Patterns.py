"""Patterns: the periodic and bursty rhythms of the log, who is bursty or clockwork, which items spike and when,
what people repeat, and whether the model picks any of it up."""
import pandas as pd
import streamlit as st

from seqrec_core.analysis.kinds_eval import TIME_MASS, load_model_ties
from seqrec_core.errors import InputError
from seqrec_core.evaluation import AUC_HELP
from seqrec_core.explain_methods import time_mass_keys
from seqrec_core.patterns.burstiness import describe_burstiness
from seqrec_core.patterns.common import has_timestamps
from seqrec_core.patterns.model_ties import TIE_METRICS
from seqrec_core.patterns.rhythm import timezone_names
from seqrec_core.patterns.segments import BURSTY_B, REGULAR_B
from seqrec_core.viz.plot_explain import method_name
from seqrec_core.viz.plot_patterns import (
    fmt_duration,
    fmt_hours,
    plot_burst_timeline,
    plot_daily_activity,
    plot_hour_weekday,
    plot_iet_histogram,
    plot_periodogram,
    plot_reconsumption_intervals,
    plot_segments,
    plot_user_burstiness,
)
from seqrec_core.viz.plot_patterns_model import plot_attribution_time_mass, plot_burst_split, plot_metrics_by_segment
from ui import compute, state, stored
from ui import explain_cache as ecache
from ui import patterns_cache as cache
from ui.widgets import download_table

SEGMENT_MEANING = {
    "periodic": "a significant dominant period of their own (e.g. every evening)",
    "bursty": f"bursts separated by long silences (B > {BURSTY_B:+.1f})",
    "regular": f"more evenly spaced than chance (B < {REGULAR_B:+.1f})",
    "poisson-like": f"gaps as random as a Poisson process ({REGULAR_B:+.1f} ≤ B ≤ {BURSTY_B:+.1f})",
    "too few events": "not enough events to measure",
}
NICE_BINS_S = (10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
TIME = st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")
PCT = st.column_config.NumberColumn(format="percent")

st.title("Patterns")
st.caption("When do people act, how bursty is their activity, which items spike and when, what do they repeat "
           "— and does the model use any of it?")
ds = state.require_dataset()
if not has_timestamps(ds.events):
    st.info(f"**{ds.name}** has only an event order, no timestamps, so there are no time patterns to show. "
            "Load a log with a time column on **Data** (unix seconds/milliseconds or ISO-8601).")
    st.page_link("app_pages/1_Data.py", label="Go to Data")
    st.stop()
fp = ds.fingerprint
zones = timezone_names()
c1, c2 = st.columns([1, 3])
tz = c1.selectbox("Timezone for hours and days", zones, index=zones.index("UTC") if "UTC" in zones else 0,
                  key="patterns_tz", help="Hour-of-day, weekday and calendar views are read in this timezone; "
                                          "periods, burstiness and bursts do not depend on it.")
try:
    rep = cache.report(fp, tz, ds)
except InputError as err:
    st.error(str(err))
    st.stop()
c2.markdown(f"**{rep.events:,} events** by **{rep.users:,} users** · analysed in {rep.seconds:.1f} s · "
            "times in the tables are UTC")
titles = cache.item_titles(fp, ds)
significant = [p for p in rep.periods if p.significant]
m = st.columns([1.6, 1, 1, 1, 1])
m[0].metric("Significant periods", ", ".join(fmt_hours(p.period_hours).split(" (")[0] for p in significant) or "none",
            help="Periods whose periodogram peak noise would reach with probability < 1% (false-alarm test). "
                 "24 h = daily, 168 h = weekly.")
m[1].metric("Burstiness B", f"{rep.burstiness:+.2f}", help="−1 clockwork, 0 random (Poisson), +1 extreme bursts; "
                                                          "finite-size corrected (Kim & Jo 2016).")
m[2].metric("Memory M", f"{rep.memory:+.2f}", help="Correlation between consecutive gaps (Goh & Barabási 2008): "
                                                   "> 0 = long gaps follow long gaps.")
m[3].metric("Item bursts", f"{len(rep.item_bursts):,}", help="Intervals in which an item took a much larger share "
                                                            "of all activity than usual (Kleinberg's automaton).")
m[4].metric("Repeat share", f"{rep.repeats.repeat_share:.1%}", help="Events whose item the user had before.")
st.caption(describe_burstiness(rep.burstiness, rep.memory) + f" {rep.repeats.repeat_share:.0%} of events are an "
           "item the user had before.")


def with_titles(frame, col: str = "item"):  # noqa: ANN001, ANN201 - DataFrame in and out
    shown = frame.copy()
    if col in shown and titles:
        shown.insert(1, "title", [titles.get(str(i), "") for i in shown[col]])
    return shown


def overview_tab() -> None:
    a, b = st.columns([2, 3])
    with a:
        st.subheader("Periods in the whole log")
        periods = rep.periods_frame()
        st.dataframe(periods, width="stretch", hide_index=True, column_config={
            "period_hours": st.column_config.NumberColumn("period (h)", format="%.2f"),
            "strength": st.column_config.NumberColumn(format="%.3f"),
            "false_alarm": st.column_config.NumberColumn("false-alarm probability", format="%.2g")})
        st.caption("Periods in the number of active users per hour (so one person's binge counts once), strongest "
                   "first; harmonics are folded into their base period (a daily rhythm reads as 24 h, not 12 h). "
                   "Strength = share of the series' variance the period explains.")
        download_table(periods, "periods.csv")
    with b:
        st.plotly_chart(plot_periodogram(periods), width="stretch", theme=None)
        st.caption("Each diamond is a tested period; red ones are significant (noise would rarely reach that "
                   "strength). 24 h = a daily rhythm, 168 h = a weekly one.")
    st.plotly_chart(plot_hour_weekday(rep.hour_weekday, tz), width="stretch", theme=None)
    st.caption(f"Events per hour of day and weekday in {tz}; darker = busier. Vertical bands are daily habits, a "
               "darker row is a busier weekday.")
    st.plotly_chart(plot_daily_activity(rep.daily, tz), width="stretch", theme=None)
    st.caption("Events per calendar day and their rolling average (the thick line): trends, weekly waves, outages "
               "and one-off spikes.")
    st.subheader("Items with a rhythm of their own")
    items = rep.per_item[rep.per_item["significant"].astype(bool)] if len(rep.per_item) else rep.per_item
    if items.empty:
        st.info(f"None of the {len(rep.per_item):,} items with enough events has a significant period of its own: "
                "items are consumed whenever their users are active.")
        return
    st.dataframe(with_titles(items), width="stretch", hide_index=True, height=260, column_config={
        "period_hours": st.column_config.NumberColumn("period (h)", format="%.1f"),
        "best_period_hours": st.column_config.NumberColumn("strongest peak (h)", format="%.1f"),
        "strength": st.column_config.NumberColumn(format="%.3f"),
        "false_alarm": st.column_config.NumberColumn("false-alarm probability", format="%.2g")})
    st.caption(f"{len(items):,} of {len(rep.per_item):,} items with enough events have a significant period of "
               "their own (e.g. bought in the evening rather than spread over the day).")
    download_table(rep.per_item, "item_periods.csv", label="Download all item periods (CSV)")


def burstiness_tab() -> None:
    st.plotly_chart(plot_iet_histogram(rep.iet_hist, rep.burstiness, rep.memory), width="stretch", theme=None)
    st.caption("How long users wait between consecutive events (log-log). The dashed curve is what random "
               "(Poisson) timing with the same mean gap would give: mass far above it on the left and right = "
               "quick bursts and long silences.")
    a, b = st.columns([3, 2])
    with a:
        st.plotly_chart(plot_user_burstiness(rep.per_user), width="stretch", theme=None)
        st.caption("One dot per user. Right of the dotted line = burstier than random, left = more regular; "
                   "up = long gaps follow long gaps. Hover for the user id.")
    with b:
        st.plotly_chart(plot_segments(rep.segments), width="stretch", theme=None)
        st.caption("Users per temporal segment; how each is defined is in the table below.")
    summary = rep.segment_summary()
    summary.insert(1, "meaning", [SEGMENT_MEANING.get(s, "") for s in summary["segment"]])
    st.dataframe(summary, width="stretch", hide_index=True, column_config={
        "share": PCT, "median_burstiness": st.column_config.NumberColumn("median B", format="%+.2f"),
        "median_memory": st.column_config.NumberColumn("median M", format="%+.2f"),
        "median_events": st.column_config.NumberColumn("median events", format="%.0f")})
    st.caption("First matching rule wins, top to bottom: a user with a significant period counts as periodic even "
               "if also bursty.")
    download_table(rep.per_user, "user_patterns.csv", label="Download every user's B, M, period, segment (CSV)")


@st.fragment
def bursts_tab() -> None:
    st.subheader("Item bursts")
    bursts = with_titles(rep.item_bursts)
    if bursts.empty:
        st.info("No item bursts: no item's share of all activity rose far above its usual share for a while.")
    else:
        st.dataframe(bursts, width="stretch", hide_index=True, height=260,
                     column_config={"start": TIME, "end": TIME, "share": PCT})
        st.caption("Intervals in which an item took a much larger share of all activity than its usual share "
                   "(level 1–3: how much larger; share = its share inside the burst). Measured against all "
                   "activity, so a busy evening alone is no burst.")
        download_table(bursts, "item_bursts.csv")
        ids = list(dict.fromkeys(rep.item_bursts["item"].astype(str)))
        item = st.selectbox("Item to draw", ids, key="patterns_item",
                            format_func=lambda i: f"{titles.get(i) or 'id ' + i} ({i})")
        tl = cache.timeline(fp, "item", item, 6.0, None, None, ds)
        st.plotly_chart(plot_burst_timeline(tl, rep.item_bursts[rep.item_bursts["item"].astype(str) == item],
                                            what=titles.get(item) or f"item {item}"), width="stretch", theme=None)
        st.caption("The item's events per 6 hours; shaded = detected bursts (darker = higher level). Hover a bar "
                   "for its share of all activity; drag to zoom.")
    st.subheader("User binge sessions")
    ub = rep.user_bursts
    if ub.empty:
        st.info("No binge sessions: no user ever acted far faster than their own usual pace.")
        return
    st.dataframe(ub, width="stretch", hide_index=True, height=260,
                 column_config={"start": TIME, "end": TIME, "minutes": st.column_config.NumberColumn(format="%.1f")})
    st.caption("Stretches in which a user acted far faster than their own usual pace: level k ≈ 2^k times faster. "
               "Bursts nest (a level-8 binge lies inside the same user's level-3 busy days). Highest level first.")
    download_table(ub, "user_bursts.csv")
    top = ub.head(500).reset_index(drop=True)
    pick = st.selectbox("Binge session to draw", top.index, key="patterns_session",
                        format_func=lambda i: f"user {top.at[i, 'user']} · level {top.at[i, 'level']} · "
                                              f"{top.at[i, 'events']:,} events in "
                                              f"{fmt_duration(60 * top.at[i, 'minutes'])} · "
                                              f"{top.at[i, 'start']:%Y-%m-%d %H:%M}",
                        help="The 500 most intense sessions (highest level first).")
    row = top.loc[pick]
    bin_h, start, end = session_window(row["start"], row["end"])
    tl = cache.timeline(fp, "user", str(row["user"]), bin_h, start, end, ds)
    st.plotly_chart(plot_burst_timeline(tl, ub[ub["user"].astype(str) == str(row["user"])],
                                        what=f"user {row['user']}", bin_hours=bin_h), width="stretch", theme=None)
    st.caption("The user's events around the session, in bins fitted to its length; shaded = their binge "
               "sessions (darker = more intense, nested ones overlap).")


def session_window(start, end) -> tuple[float, str, str]:  # noqa: ANN001 - Timestamps
    """A span around one session, with round bins that cut it into ~15 bars (10 s to 1 h each)."""
    span = max((end - start).total_seconds(), 60.0)
    bin_s = next((b for b in NICE_BINS_S if b >= span / 15), NICE_BINS_S[-1])
    pad = pd.Timedelta(seconds=max(2 * span, 1800.0))
    return bin_s / 3600, (start - pad).isoformat(), (end + pad).isoformat()


def repeats_tab() -> None:
    st.plotly_chart(plot_reconsumption_intervals(rep.repeats.intervals, rep.repeats.repeat_share), width="stretch",
                    theme=None)
    st.caption("How long after consuming an item the same user consumes it again. A peak at 1 d or 1 wk is a "
               "habit; mass under 1 h is re-clicking within one session.")
    st.subheader("Items people come back to on a cycle")
    regular = with_titles(rep.repeats.regular_items)
    if regular.empty:
        st.info("No item is re-consumed on a steady cycle here: repeats happen, but at irregular intervals "
                "(an item needs at least 3 repeats with a coefficient of variation below 0.5).")
        return
    st.dataframe(regular, width="stretch", hide_index=True, height=300)
    st.caption("Items re-consumed at least 3 times with steady intervals (coefficient of variation < 0.5, tested "
               "against memoryless returns): candidates for 'time to buy again' reminders.")
    download_table(regular, "regular_items.csv")


@st.fragment
def model_tab() -> None:
    run = state.get_run()
    expected = (run.config.get("data") or {}).get("fingerprint") if run is not None else None
    if run is None or (expected and expected != fp):
        st.info("No model trained on this data is in use. Train one on **Train** to see whether it does better "
                "for bursty or periodic users, inside bursts, and whether it leans on timely events.")
        st.page_link("app_pages/3_Train.py", label="Go to Train")
        return
    exclude_seen = compute.exclude_seen_default(fp, ds)
    ties = stored.lookup(run, ds, "model_ties", exclude_seen=bool(exclude_seen))
    if not ties.fresh:
        stored.offer(run, ds, ties, "the model's metrics per user segment and inside bursts", key="model_ties",
                     cost="one evaluation of the run and the baselines")
        return
    by_seg, by_burst = load_model_ties(ties.unit, run.path.name)
    st.markdown(f"Run **{run.path.name}** on the test split (last event of each user), seen items "
                f"**{'excluded' if exclude_seen else 'included'}**, next to the baselines (the Evaluate page's "
                "numbers, split by when and for whom).")
    metric = st.radio("Metric", TIE_METRICS, horizontal=True, key="patterns_metric",
                      help="NDCG@10 rewards the held-out item near the top of the ranking; HR@10: share of users "
                           "whose held-out item is in the top 10; MRR: mean of 1/rank. " + AUC_HELP)
    a, b = st.columns(2)
    with a:
        st.plotly_chart(plot_metrics_by_segment(by_seg, metric), width="stretch", theme=None)
        st.caption(f"{metric} per user segment: is the model better for bursty, periodic or regular users?")
        download_table(by_seg, "metrics_by_segment.csv")
    with b:
        st.plotly_chart(plot_burst_split(by_burst, metric), width="stretch", theme=None)
        st.caption("Held-out events inside a burst of their item vs outside it; 'never bursts' = items without "
                   "any burst. Small groups have wide whiskers.")
        download_table(by_burst, "metrics_by_burst.csv")
    stored.caption(ties, f"seen items {'excluded' if exclude_seen else 'included'}")
    st.subheader("Does the model lean on timely events?")
    defaults = TIME_MASS.defaults
    n1, n2, n3 = st.columns(3)
    n_users = n1.number_input("Predictions to explain", 20, 2000, int(defaults["n_users"]), step=20,
                              key="patterns_tm_users",
                              help="Sampled test users (fixed seed); each explains the model's top recommendation.")
    # The registry's methods for this view, as far as the stored kind accepts them.
    methods = [m for m in time_mass_keys() if m in TIME_MASS.allowed.get("method", time_mass_keys())]
    method = n2.selectbox("Method", methods, format_func=method_name, key="patterns_tm_method")
    steps = n3.slider("Integrated-gradients steps", 5, 100, int(defaults["steps"]), step=5, key="patterns_tm_steps",
                      disabled=method != "ig")
    found = stored.lookup(run, ds, "time_mass", n_users=int(n_users), method=method, steps=int(steps), tz=tz)
    if not found.fresh:
        stored.offer(run, ds, found, "the attribution by burst, hour and weekday", key="time_mass",
                     cost=f"{int(n_users):,} explanations")
    else:
        mass = found.unit.table("mass")
        meth = method
        users = int(mass["predictions"].max()) if len(mass) else 0
        st.plotly_chart(plot_attribution_time_mass(mass, users=users, method=meth), width="stretch", theme=None)
        st.caption(f"Blue bars: share of the explanation on past events inside a burst of their item, at the same "
                   f"hour ({tz}) or weekday as the prediction; grey diamonds: those events' share of the history. "
                   "A bar well above its diamond = the model uses that timing.")
        download_table(mass, "attribution_time_mass.csv")
        stored.caption(found, f"{users:,} predictions · {method_name(meth)} · hours in {tz}")


def planted_tab() -> None:
    st.markdown("The demo log was generated with a daily (24 h) and a weekly (168 h) rhythm and a few items that "
                "burst for 2–3 days, so this tab can check the analysis against the truth: both periods should be "
                "found within 2% and be significant, and the detected bursts should match the planted ones (a "
                "detected burst matches a planted one when they overlap by half or more; F1 combines how many "
                "detected bursts are real and how many real ones were detected, 1 = all and only those).")
    check = cache.demo_check(fp, ds.source.demo_seed, rep)
    p = st.columns(3)
    for col, name in zip(p[:2], ("daily", "weekly"), strict=True):
        found = check["periods"][name]
        ok = found["found_hours"] is not None and found["significant"]
        col.metric(f"Planted {name} period {found['planted_hours']:.0f} h",
                   f"{found['found_hours']:.1f} h" if found["found_hours"] is not None else "not found",
                   delta="found, significant" if ok else "missed", delta_color="normal" if ok else "inverse")
    scores = check["bursts"]
    f1 = scores.get("f1", float("nan"))
    p[2].metric("Planted bursts: F1", f"{f1:.2f}", delta="good (0.8 or more)" if f1 >= 0.8 else "weak (below 0.8)",
                delta_color="normal" if f1 >= 0.8 else "inverse",
                help=f"precision {scores.get('precision', float('nan')):.2f} · recall "
                     f"{scores.get('recall', float('nan')):.2f}")
    truth = with_titles(check["truth"])
    truth["length"] = [fmt_duration((e - s).total_seconds()) for s, e in zip(truth["start"], truth["end"], strict=True)]
    st.dataframe(truth, width="stretch", hide_index=True, column_config={"start": TIME, "end": TIME})
    st.caption(f"The {scores.get('planted', len(truth))} planted bursts: {scores.get('matched', '?')} recovered, "
               f"{scores.get('found', '?')} bursts found in all. Draw any of them on the **Bursts** tab.")
    download_table(truth, "planted_bursts.csv")


# Only the open tab runs (tabs rerun on change), so the page stays fast and the model's evaluation is only
# computed when someone opens the Model tab.
sections = {"Overview": overview_tab, "Burstiness": burstiness_tab, "Bursts": bursts_tab, "Repeats": repeats_tab,
            "Model": model_tab}
if ecache.is_demo(ds):
    sections["Planted truth check"] = planted_tab
for tab, render in zip(st.tabs(list(sections), key="patterns_tab", on_change="rerun"), sections.values(),
                       strict=True):
    if tab.open:
        with tab:
            render()
