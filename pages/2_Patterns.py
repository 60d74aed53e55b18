"""Patterns: the periodic and bursty rhythms of the log, who is bursty or clockwork, which items spike and when,
what people repeat, and whether the model picks any of it up."""
import streamlit as st

from seqrec_core.errors import InputError
from seqrec_core.patterns.common import has_timestamps
from seqrec_core.patterns.rhythm import timezone_names
from seqrec_core.viz.plot_patterns import (
    fmt_duration,
    fmt_hours,
    plot_attribution_time_mass,
    plot_burst_split,
    plot_burst_timeline,
    plot_daily_activity,
    plot_hour_weekday,
    plot_iet_histogram,
    plot_metrics_by_segment,
    plot_periodogram,
    plot_reconsumption_intervals,
    plot_segments,
    plot_user_burstiness,
)
from ui import compute, state
from ui import explain_cache as ecache
from ui import patterns_cache as cache
from ui.widgets import download_table

SEGMENT_MEANING = {
    "periodic": "a significant dominant period (e.g. every day at the same time)",
    "bursty": "bursts of activity separated by long silences (B clearly above 0)",
    "regular": "more evenly spaced than chance (B clearly below 0)",
    "poisson-like": "gaps as random as a Poisson process (B near 0)",
    "too few events": "not enough events to measure",
}

st.title("Patterns")
st.caption("When do people act, how bursty is their activity, which items spike and when, what do they repeat "
           "— and does the model use any of it?")
ds = state.require_dataset()
if not has_timestamps(ds.events):
    st.info(f"**{ds.name}** has only an event order, no timestamps, so there are no time patterns to show. "
            "Load a log with a time column on **Data** (unix seconds/milliseconds or ISO-8601).")
    st.page_link("pages/1_Data.py", label="Go to Data")
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
m = st.columns(5)
m[0].metric("Significant periods", ", ".join(fmt_hours(p.period_hours) for p in significant) or "none",
            help="Periods whose periodogram peak noise would reach with probability < 1% (false-alarm test).")
m[1].metric("Burstiness B", f"{rep.burstiness:+.2f}", help="−1 clockwork, 0 random (Poisson), +1 extreme bursts; "
                                                          "finite-size corrected (Kim & Jo 2016).")
m[2].metric("Memory M", f"{rep.memory:+.2f}", help="Correlation between consecutive gaps (Goh & Barabási 2008): "
                                                   "> 0 = long gaps follow long gaps.")
m[3].metric("Item bursts", f"{len(rep.item_bursts):,}", help="Intervals in which an item took a much larger share "
                                                            "of all activity than usual (Kleinberg's automaton).")
m[4].metric("Repeat share", f"{rep.repeats.repeat_share:.1%}", help="Events whose item the user had before.")

demo = ecache.is_demo(ds)
tabs = st.tabs(["Overview", "Burstiness", "Bursts", "Repeats", "Model"] + (["Planted truth check"] if demo else []))


def with_titles(frame, col: str = "item"):  # noqa: ANN001, ANN201 - DataFrame in and out
    shown = frame.copy()
    if col in shown and titles:
        shown.insert(1, "title", [titles.get(str(i), "") for i in shown[col]])
    return shown


# ------------------------------------------------------------------------------------------- overview
with tabs[0]:
    a, b = st.columns([2, 3])
    with a:
        st.subheader("Periods in the whole log")
        periods = rep.periods_frame()
        st.dataframe(periods.style.format({"period_hours": "{:.2f}", "strength": "{:.3f}", "false_alarm": "{:.2g}"}),
                     width="stretch", hide_index=True)
        st.caption("Strongest first; harmonics are folded into their base period (a daily rhythm reads as 24 h, "
                   "not 12 h). Strength = share of the activity's variance the period explains.")
        download_table(periods, "periods.csv")
    with b:
        st.plotly_chart(plot_periodogram(periods), width="stretch", theme=None)
        st.caption("Each diamond is a candidate period; red ones are significant (noise would rarely reach that "
                   "strength). 24 h = a daily rhythm, 168 h = a weekly one.")
    st.plotly_chart(plot_hour_weekday(rep.hour_weekday, tz), width="stretch", theme=None)
    st.caption(f"Events per hour of day and weekday in {tz}; darker = busier. Horizontal bands are daily habits, a "
               "brighter row is a busier weekday.")
    st.plotly_chart(plot_daily_activity(rep.daily, tz), width="stretch", theme=None)
    st.caption("Events per calendar day (bars) and their 7-day average (line): trends, weekly waves, outages and "
               "one-off spikes.")
    st.subheader("Items with their own rhythm")
    items = rep.per_item[rep.per_item["significant"].astype(bool)] if len(rep.per_item) else rep.per_item
    st.dataframe(with_titles(items), width="stretch", hide_index=True, height=260)
    st.caption(f"{len(items):,} of {len(rep.per_item):,} items with enough events have a significant period of "
               "their own (e.g. bought every morning, or every weekend).")
    download_table(rep.per_item, "item_periods.csv", label="Download all item periods (CSV)")

# ----------------------------------------------------------------------------------------- burstiness
with tabs[1]:
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
        st.caption("Users per temporal segment; definitions in the table below.")
    summary = rep.segment_summary()
    summary.insert(1, "meaning", [SEGMENT_MEANING.get(s, "") for s in summary["segment"]])
    st.dataframe(summary.style.format({"share": "{:.1%}", "median_burstiness": "{:+.2f}",
                                       "median_memory": "{:+.2f}", "median_events": "{:,.0f}"}, na_rep="–"),
                 width="stretch", hide_index=True)
    download_table(rep.per_user, "user_patterns.csv", label="Download every user's B, M, period, segment (CSV)")

# --------------------------------------------------------------------------------------------- bursts
with tabs[2]:
    @st.fragment
    def bursts_tab() -> None:
        st.subheader("Item bursts")
        bursts = with_titles(rep.item_bursts)
        st.dataframe(bursts, width="stretch", hide_index=True, height=260)
        st.caption("Intervals in which an item took a much larger share of all activity than its usual share "
                   "(level 1–3: how much larger). Relative to all activity, so a busy evening alone is no burst.")
        download_table(bursts, "item_bursts.csv")
        if len(rep.item_bursts):
            ids = list(dict.fromkeys(rep.item_bursts["item"].astype(str)))
            item = st.selectbox("Item to draw", ids, key="patterns_item",
                                format_func=lambda i: f"{titles.get(i) or 'id ' + i} ({i})")
            tl = cache.timeline(fp, "item", item, 6.0, ds)
            st.plotly_chart(plot_burst_timeline(tl, rep.item_bursts[rep.item_bursts["item"].astype(str) == item],
                                                what=titles.get(item) or f"item {item}"), width="stretch",
                            theme=None)
            st.caption("The item's events per 6 hours; shaded = detected bursts (darker = higher level). Hover a "
                       "bar for its share of all activity.")
        st.subheader("User binge sessions")
        ub = rep.user_bursts
        st.dataframe(ub, width="stretch", hide_index=True, height=260)
        st.caption("Intervals in which a user was far more active than their own usual rate (e.g. rating "
                   "hundreds of items within minutes).")
        download_table(ub, "user_bursts.csv")
        if len(ub):
            users = list(dict.fromkeys(ub.sort_values("events", ascending=False)["user"].astype(str)))[:500]
            user = st.selectbox("User to draw", users, key="patterns_user",
                                help="Users with binge sessions, most events in a session first.")
            tl = cache.timeline(fp, "user", user, 1.0, ds)
            st.plotly_chart(plot_burst_timeline(tl, ub[ub["user"].astype(str) == user], what=f"user {user}",
                                                bin_hours=1.0), width="stretch", theme=None)
            st.caption("The user's events per hour over their active span; shaded = binge sessions.")

    bursts_tab()

# -------------------------------------------------------------------------------------------- repeats
with tabs[3]:
    st.plotly_chart(plot_reconsumption_intervals(rep.repeats.intervals, rep.repeats.repeat_share), width="stretch",
                    theme=None)
    st.caption("How long after consuming an item the same user consumes it again. A peak at 1 d or 1 wk is a "
               "habit; mass under 1 h is re-clicking within one session.")
    st.subheader("Items people come back to on a cycle")
    regular = with_titles(rep.repeats.regular_items)
    st.dataframe(regular, width="stretch", hide_index=True, height=300)
    st.caption("Items re-consumed at least 3 times with steady intervals (coefficient of variation < 0.5): "
               "candidates for 'time to buy again' reminders.")
    download_table(regular, "regular_items.csv")

# ---------------------------------------------------------------------------------------------- model
with tabs[4]:
    @st.fragment
    def model_tab() -> None:
        run = state.get_run()
        expected = (run.config.get("data") or {}).get("fingerprint") if run is not None else None
        if run is None or (expected and expected != fp):
            st.info("No model trained on this data is in use. Train one on **Train** to see whether it does "
                    "better for bursty or periodic users, inside bursts, and whether it leans on timely events.")
            st.page_link("pages/3_Train.py", label="Go to Train")
            return
        key = compute.run_key(run)
        exclude_seen = compute.exclude_seen_default(fp, ds)
        by_seg, by_burst = cache.model_ties(key, fp, exclude_seen, run, ds, rep)
        st.markdown(f"Run **{run.path.name}** on the test split (last event of each user), seen items "
                    f"**{'excluded' if exclude_seen else 'included'}**, next to the baselines.")
        metric = st.radio("Metric", ["NDCG@10", "HR@10"], horizontal=True, key="patterns_metric")
        a, b = st.columns(2)
        with a:
            st.plotly_chart(plot_metrics_by_segment(by_seg, metric), width="stretch", theme=None)
            st.caption(f"{metric} per user segment: is the model better for bursty, periodic or regular users?")
            download_table(by_seg, "metrics_by_segment.csv")
        with b:
            st.plotly_chart(plot_burst_split(by_burst, metric), width="stretch", theme=None)
            st.caption("Held-out events inside a burst of their item vs outside it; 'never bursts' = items "
                       "without any burst. A gap means the timing of a fad matters.")
            download_table(by_burst, "metrics_by_burst.csv")
        if not ecache.supports_explain(run):
            return
        st.subheader("Does the model lean on timely events?")
        n1, n2, n3 = st.columns(3)
        n_users = n1.number_input("Predictions to explain", 20, 2000, 200, step=20, key="patterns_tm_users")
        method = n2.selectbox("Method", ["ig", "occlusion", "attention"], key="patterns_tm_method")
        steps = n3.slider("IG steps", 5, 100, 20, step=5, key="patterns_tm_steps")
        if st.button("Compute attribution by time", type="primary"):
            st.session_state["patterns_tm"] = (int(n_users), method, int(steps))
        if "patterns_tm" in st.session_state:
            nu, meth, stp = st.session_state["patterns_tm"]
            mass = cache.attribution_time_mass(key, fp, tz, nu, meth, stp, run, ds, rep)
            users = int(mass["predictions"].max()) if len(mass) else 0
            st.plotly_chart(plot_attribution_time_mass(mass, users=users, method=meth), width="stretch", theme=None)
            st.caption("Blue bars: share of the explanation on past events inside a burst of their item, at the "
                       "same hour or weekday as the prediction; grey diamonds: those events' share of the history. "
                       "A bar well above its diamond = the model uses that timing.")
            download_table(mass, "attribution_time_mass.csv")

    model_tab()

# ---------------------------------------------------------------------------------------- planted truth
if demo:
    with tabs[5]:
        st.markdown("The demo log was generated with a daily (24 h) and a weekly (168 h) rhythm and a few items "
                    "that burst for 2–3 days. The bar: both periods found within 2% and significant, planted "
                    "bursts found with F1 ≥ 0.8 (a found burst matches a planted one when they overlap ≥ 50%).")
        check = cache.demo_check(fp, ds.source.demo_seed, rep)
        p = st.columns(3)
        for col, name in zip(p[:2], ("daily", "weekly"), strict=True):
            found = check["periods"][name]
            ok = found["found_hours"] is not None and found["significant"]
            col.metric(f"Planted {name} period {found['planted_hours']:.0f} h",
                       f"{found['found_hours']:.1f} h" if found["found_hours"] is not None else "not found",
                       delta="found, significant" if ok else "missed", delta_color="normal" if ok else "inverse")
        f1 = check["bursts"].get("f1", float("nan"))
        p[2].metric("Planted bursts: F1", f"{f1:.2f}", delta="meets the 0.8 bar" if f1 >= 0.8 else "below the 0.8 bar",
                    delta_color="normal" if f1 >= 0.8 else "inverse",
                    help=f"precision {check['bursts'].get('precision', float('nan')):.2f} · recall "
                         f"{check['bursts'].get('recall', float('nan')):.2f}")
        truth = with_titles(check["truth"])
        truth["length"] = [fmt_duration((e - s).total_seconds()) for s, e in zip(truth["start"], truth["end"],
                                                                                 strict=True)]
        st.dataframe(truth, width="stretch", hide_index=True)
        st.caption("The planted bursts; compare with the **Bursts** tab, where each can be drawn on its timeline.")
        download_table(truth, "planted_bursts.csv")
