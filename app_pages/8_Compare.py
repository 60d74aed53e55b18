"""Compare: every run trained on this dataset side by side, under one evaluation protocol, next to the baselines."""
import streamlit as st

from seqrec_core import compare
from seqrec_core.errors import InputError
from seqrec_core.viz.theme import model_colors
from ui import compare_cache as cache
from ui import compare_jobs, compute, state, stored
from ui.compare_sections import CompareView, all_runs_tab, for_whom_tab, head_to_head_tab, one_user_tab

TABS = ["All runs", "Two runs head to head", "For whom is each run better?", "One user, two runs"]

st.title("Compare")
st.caption("Which model should you use? Every run trained on this dataset, evaluated the same way (test split, "
           "full ranking, same users), with 95% intervals, broken down by user, and two runs' recommendations "
           "and explanations for one user side by side.")
ds = state.require_dataset()
fp = ds.fingerprint
metas = cache.list_metas(state.runs_root(), fp)
if not metas:
    st.info(f"No model has been trained on **{ds.name}** yet. Train at least two (e.g. two families) on **Train**, "
            "then compare them here.")
    st.page_link("app_pages/3_Train.py", label="Go to Train")
    st.stop()
if len(metas) < 2:
    st.info("Only one run is trained on this data, so there is nothing to compare it with yet: train another "
            "(another family or other settings) on **Train**. Its numbers next to the baselines are below.")
    st.page_link("app_pages/3_Train.py", label="Go to Train")

c1, c2 = st.columns([1, 3])
exclude_seen = c1.toggle("Exclude seen items", value=compute.exclude_seen_default(fp, ds),
                         help="On: items the user already had are removed from the ranking (the default for logs "
                              "without repeats). Applies to every run and baseline alike.")
runs, evaluations, failed, missing = {}, {}, [], []
for meta in metas:
    try:
        run = state.lazy_run(meta.path)
    except (InputError, OSError) as err:
        failed.append(f"{meta.name}: {err}")
        continue
    runs[meta.name] = run
    found = stored.lookup(run, ds, "evaluation", exclude_seen=bool(exclude_seen))
    if found.fresh:
        evaluations[meta.name] = compute.stored_evaluation(found.unit, meta.name)
    else:
        missing.append((run, found))
if failed:
    st.warning("Left out (cannot be loaded) — " + "; ".join(failed))
if missing:
    compare_jobs.offer_missing(missing, ds)
metas = [m for m in metas if m.name in evaluations]
if not metas:
    st.stop()
results = {name: ev.results[name] for name, ev in evaluations.items()}
newest = metas[0].name  # the baselines' numbers are the same in every run's evaluation: take the newest run's
baselines = {b: evaluations[newest].results[b] for b in compare.BASELINE_NAMES if b in evaluations[newest].results}
metrics = cache.metrics_table(evaluations, newest)
n_users = len(next(iter(results.values())).users)
c2.markdown(f"**Protocol:** test split (each user's last event), {n_users:,} users, every one of "
            f"{ds.sequences.vocab.n_items:,} items ranked, "
            f"seen items **{'excluded' if exclude_seen else 'included'}**, "
            f"{len(results)} run{'s' if len(results) != 1 else ''} and {len(baselines)} baselines, from each run's "
            "stored evaluation.")

names = [m.name for m in metas]
setups = {m.name: m.setup for m in metas}
run_a = run_b = None
if len(names) >= 2:
    in_use = st.session_state.get(state.RUN_KEY)
    first = next((i for i, m in enumerate(metas) if str(m.path) == in_use), 0)
    h1, h2 = st.columns(2)
    run_a = h1.selectbox("Run A", names, index=first, format_func=lambda n: f"{n} ({setups[n]})",
                         help="Defaults to the run in use. Used by the head-to-head and one-user tabs.")
    run_b = h2.selectbox("Run B", [n for n in names if n != run_a], format_func=lambda n: f"{n} ({setups[n]})",
                         help="Any other run on this dataset.")
view = CompareView(ds=ds, metas=metas, runs=runs, results=results, evaluations=evaluations, newest=newest,
                   baselines=baselines, metrics=metrics, colors=model_colors(names), setups=setups,
                   exclude_seen=bool(exclude_seen), run_a=run_a, run_b=run_b)
# Only the open tab runs (tabs rerun on change), so the first view draws one tab's charts, not all seven.
tabs = st.tabs(TABS, key="compare_tab", on_change="rerun", bind="query-params")
for tab, render in zip(tabs, (all_runs_tab, head_to_head_tab, for_whom_tab, one_user_tab), strict=True):
    if tab.open:
        with tab:
            render(view)
