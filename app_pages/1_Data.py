"""Data: bring a log (or use the demo), map its columns, and see what is in it and what cleaning dropped."""
import numpy as np
import streamlit as st

from seqrec_core.data.columns import sequence_guess
from seqrec_core.data.loaders import FORMATS
from seqrec_core.data.prep import PrepOptions
from seqrec_core.data.schema import ColumnMap
from seqrec_core.errors import InputError
from seqrec_core.viz.plot_data import (
    plot_events_over_time,
    plot_item_popularity,
    plot_quality_report,
    plot_sequence_lengths,
)
from ui import state, uploads
from ui.widgets import download_table

LOADED_NOTE = "data_loaded_note"  # the success message shown after the rerun that follows loading

st.title("Data")
st.caption("Load a behaviour log (user, item, time), check how it was read, and see its shape before training.")

with st.expander("Bring your own log", expanded=state.get_dataset() is None):
    # No type filter: the loader recognises formats by content too and explains what it cannot read.
    upload = st.file_uploader("Log file",
                              help="CSV/TSV (any delimiter), Parquet, JSON Lines, MovieLens (u.data, ratings.dat, "
                                   "ratings.csv) or sequence text (one line per user: `user item item ...`); "
                                   f".gz and .zip are opened. Up to {uploads.max_upload_mb():,g} MB.")
    titles_file = st.file_uploader("Optional: item titles (MovieLens movies.csv / movies.dat / u.item)",
                                   type=["csv", "dat", "item"],
                                   help="Adds titles and genres to items, shown everywhere instead of bare ids.")
    fmt = st.selectbox("Format", FORMATS, help="'auto' detects the format from the name and the first bytes.")
    if upload is not None:
        try:
            for chosen in (upload, titles_file):
                if chosen is not None:
                    uploads.check_upload_size(chosen.name, chosen.size)
        except InputError as err:
            st.error(str(err))
            st.stop()
        data = upload.getvalue()
        try:
            raw = uploads.read_raw(upload.name, data, fmt)
            detected = uploads.detect(upload.name, data, fmt)
        except InputError as err:
            st.error(str(err))
            st.stop()
        st.markdown(f"**Preview** of `{upload.name}` (first rows as read):")
        st.dataframe(raw.head(20), width="stretch", hide_index=True)
        columns = [None, *map(str, raw.columns)]

        def pick(label: str, guess: str | None, help_text: str) -> str | None:
            index = columns.index(guess) if guess in columns else 0
            return st.selectbox(label, columns, index=index, help=help_text, key=f"col_{label}")

        guess = sequence_guess(raw, detected)
        c1, c2, c3, c4 = st.columns(4)
        with c1:
            user_col = pick("User column", guess.user, "Who acted. Detected from names and content. Rows without "
                            "a user id are kept as their session (below) or dropped, never read as a user 'NA'.")
        with c2:
            item_col = pick("Item column", detected.item, "What they acted on.")
        with c3:
            time_col = pick("Time column", detected.time, "Unix seconds / milliseconds, ISO-8601 or dates "
                            "(one day/month order per column). Empty = file order.")
        with c4:
            rating_col = pick("Rating column", detected.rating, "Optional; used by the rating threshold below.")
        s1, s2, s3 = st.columns(3)
        with s1:
            session_col = pick("Session column", detected.session, "Optional: a visit or session id. It stands in "
                               "for a missing user id, or makes each session one sequence (right).")
        with s2:
            per_session = st.radio("One sequence per", ("user", "session"), index=int(guess.per_session),
                                   horizontal=True, disabled=session_col is None, key="sequence_per",
                                   help="Clickstreams of anonymous visitors have no user to follow: each session "
                                        "is then one sequence.") == "session" and session_col is not None
        with s3:
            detail_col = pick("Finer time column", detected.time_detail, "Optional: a time of day or an offset "
                              "(seconds; milliseconds when named so or past a day) added to a date-only time column.")
        if guess.note:
            st.info(guess.note)
        o1, o2, o3 = st.columns(3)
        with o1:
            k_core = st.number_input("k-core", 0, 100, 0, help="Repeatedly drop users and items with fewer than k "
                                     "events (0 = off). 5 is common in papers.")
        with o2:
            min_rating = st.number_input("Minimum rating (0 = keep all)", 0.0, 10.0, 0.0, 0.5,
                                         help="Implicit feedback: keep only events rated at least this.")
        with o3:
            drop_dupes = st.checkbox("Drop duplicate events", help="Repeated (user, item, time) rows.")
        if st.button("Use this data", type="primary"):
            # "" = the person chose "no such column" (None would mean "detect it" to the loader).
            cols = ColumnMap(user=session_col if per_session else user_col, item=item_col, time=time_col or "",
                             rating=rating_col or "", session=session_col or "", time_detail=detail_col or "")
            prep = PrepOptions(min_rating=min_rating or None, drop_duplicates=drop_dupes, k_core=int(k_core))
            extra = {titles_file.name: titles_file.getvalue()} if titles_file is not None else None
            try:
                with st.spinner("Reading and validating the log…"):
                    state.set_dataset(uploads.build_dataset(upload.name, data, fmt, cols, prep, extra))
            except InputError as err:
                st.error(str(err))
                st.stop()
            # Rerun so the sidebar (drawn before this page) shows the new dataset and its runs at once.
            st.session_state[LOADED_NOTE] = "Data loaded."
            st.rerun()

if note := st.session_state.pop(LOADED_NOTE, None):  # outside the expander, which closes once data is loaded
    st.success(note)

ds = state.get_dataset()
if ds is None:
    st.info("No data yet: upload a log above, or press **Load demo data** on Home.")
    st.stop()

summary = uploads.summary(ds)
st.subheader(f"Summary: {ds.name}")
m = st.columns(6)
per_session = ds.report.sequence_unit == "session"
m[0].metric("Sessions" if per_session else "Users", f"{summary.users:,}",
            help="One sequence per session (no user to follow across sessions)." if per_session else None)
m[1].metric("Items", f"{summary.items:,}")
m[2].metric("Events", f"{summary.events:,}")
m[3].metric("Density", f"{summary.density:.3%}", help="events / (users × items)")
m[4].metric(f"Median events per {'session' if per_session else 'user'}", f"{np.median(summary.seq_lengths):,.0f}")
if summary.time_span is not None:
    start, end = summary.time_span
    m[5].metric("Time span", f"{(end - start).days:,} days", help=f"{start:%Y-%m-%d} → {end:%Y-%m-%d} (UTC)")
else:
    m[5].metric("Time span", "no timestamps", help="This format has order but no time.")

c1, c2 = st.columns(2)
with c1:
    st.plotly_chart(plot_sequence_lengths(summary.seq_lengths), width="stretch", theme=None)
    st.caption("How many events each user has. Short histories give a sequence model little to work with.")
with c2:
    if summary.events_per_day is not None:
        st.plotly_chart(plot_events_over_time(summary.events_per_day), width="stretch", theme=None)
        st.caption("Events per day (UTC). Spikes are bursts; gaps are missing data or quiet periods.")
    else:
        st.plotly_chart(plot_item_popularity(uploads.item_counts(ds)), width="stretch", theme=None)
        st.caption("Events per item, most popular first (log-log). A steep head means popularity is a strong baseline.")
if summary.events_per_day is not None:
    st.plotly_chart(plot_item_popularity(uploads.item_counts(ds)), width="stretch", theme=None)
    st.caption("Events per item, most popular first (log-log). A steep head means popularity is a strong baseline.")

st.subheader("Data quality")
report = ds.report.to_frame()
st.markdown(f"Read **{ds.report.rows_in:,}** rows, kept **{ds.report.rows_out:,}**.")
for warning in ds.report.warnings:
    st.warning(warning)
if len(report) and report["rows_dropped"].sum() > 0:
    st.plotly_chart(plot_quality_report(report), width="stretch", theme=None)
    st.caption("Rows removed by each cleaning step, and why.")
st.dataframe(report, width="stretch", hide_index=True)
download_table(report, "quality_report.csv")

st.subheader("Events (first 1,000 after cleaning)")
st.dataframe(ds.events.head(1000), width="stretch", hide_index=True)
download_table(ds.events, "events_clean.csv", label="Download all cleaned events (CSV)")
