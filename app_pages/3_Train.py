"""Train: fit a Transformer sequence model as a background job, watch it learn, and pick the run to use."""
import time

import pandas as pd
import streamlit as st

from seqrec_core.data.dataset import DEMO
from seqrec_core.demo_run import DEMO_TRAINING_NOTE
from seqrec_core.errors import InputError
from seqrec_core.jobs import runner
from seqrec_core.jobs.spec import AnalysisRequest, TrainSpec
from seqrec_core.models import MODEL_FAMILIES, build_config, inactive_options
from seqrec_core.runs import list_runs, unpack_run_zip
from seqrec_core.training.config import TrainConfig
from seqrec_core.training.from_log import model_options_from_log, patience_from_log
from seqrec_core.training.verdict import TrainingVerdict, stop_reason_words
from seqrec_core.viz.plot_training import plot_live_loss, plot_training_curves
from ui import state
from ui.family_form import (
    DECIDING,
    family_blurb,
    family_fields,
    option_widget,
    unavailable_options,
    with_log_defaults,
)
from ui.widgets import context_reach_box, download_table, verdict_box

st.title("Train")
st.caption("Train a sequence model (Transformer, recurrent or long/short-term interest) on the data in use. Training "
           "runs in the background: you can change pages while it works, and cancel it keeping the best model so far.")
ds = state.require_dataset()
root = state.runs_root()
JOBS_KEY = "train_jobs"  # names of the jobs this session started
TRAIN_DEFAULTS = TrainConfig()


@st.cache_data(show_spinner=False, max_entries=8)
def log_defaults(family: str, fingerprint: str) -> dict:
    """The model options this log decides when left unset (seqrec_core.training.from_log), per data fingerprint."""
    return model_options_from_log(family, state.get_dataset().sequences, {})


@st.cache_data(show_spinner=False, max_entries=8)
def log_patience(family: str, fingerprint: str) -> int:
    """Early stopping's patience this log decides when left unset (seqrec_core.training.from_log)."""
    return patience_from_log(family, state.get_dataset().sequences)


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


st.subheader("New model")
families = list(MODEL_FAMILIES)
f1, f2 = st.columns([1, 3], vertical_alignment="bottom")
family = f1.selectbox("Model family", families, index=families.index("sasrec") if "sasrec" in families else 0,
                      help="Every family is trained by the same trainer and evaluated the same way; compare them on "
                           "**Compare**. The options below are the chosen family's own.")
f2.markdown(f"**{family}**: {family_blurb(family)}")
if ds.source is not None and ds.source.path == DEMO:
    st.caption(DEMO_TRAINING_NOTE)
basic, advanced = family_fields(family)
derived = log_defaults(family, ds.fingerprint)
basic, advanced = (with_log_defaults(specs, derived, "Set from this log: dense logs (many events per item) learn "
                                     "far-back dependencies better with less dropout.") for specs in (basic, advanced))
unavailable = unavailable_options(ds.sequences)
# The options that decide whether others do anything (the loss) sit above the form: see family_form.DECIDING
deciding_cols = st.columns(4)
deciding = {spec.name: option_widget(deciding_cols[i], family, spec)
            for i, spec in enumerate(s for s in basic + advanced if s.name in DECIDING)}
inactive = inactive_options(family, deciding)  # what a value left in a disabled input must not pass on
unavailable |= inactive
with st.form("train_form"):
    model_values = dict(deciding)
    cols = st.columns(4)
    for i, spec in enumerate(s for s in basic if s.name not in DECIDING):
        model_values[spec.name] = option_widget(cols[i % 4], family, spec, unavailable)
    c1, c2, c3 = st.columns(3)
    max_len = c1.number_input("History length (events)", 5, 512, TRAIN_DEFAULTS.max_len, help="How many of the "
                              "most recent events the model sees per prediction.")
    time_budget = c2.number_input("Time budget (s)", 10, 86_400, 120, help="Training stops after this and keeps "
                                  "the best checkpoint by validation NDCG@10.")
    epochs = c3.number_input("Max epochs", 1, 1000, TRAIN_DEFAULTS.epochs, help="Early stopping usually ends sooner.")
    with st.expander("More options"):
        e1, e2, e3, e4 = st.columns(4)
        lr = e1.number_input("Learning rate", 1e-5, 1e-1, TRAIN_DEFAULTS.lr, format="%.5f", help="AdamW step size.")
        batch = e2.select_slider("Batch size", ["auto", 8, 16, 32, 64, 128, 256, 512], "auto",
                                 help="Sequences per step; larger is faster on a GPU. auto: from the history "
                                      "lengths, about 1,000 predicted events a step (128 for short histories, "
                                      "32 for long ones), and for SASRec down to 8 on dense logs (100+ events "
                                      "per item), where far-back patterns need many small steps to be found.")
        patience = e3.number_input("Patience (epochs)", 1, 1000, log_patience(family, ds.fingerprint),
                                   help="Stop after this many validations without an NDCG@10 gain. Set from this "
                                        "log: 10 on sparse logs, up to 40 for SASRec on dense ones, where slow "
                                        "structure (such as far-back pairs) improves validation for many epochs.")
        seed = e4.number_input("Seed", 0, 2**31 - 1, TRAIN_DEFAULTS.seed, help="Same seed, same data: same model.")
        devices = ["auto", "cpu"] + (["cuda"] if _cuda_available() else [])
        device = e1.selectbox("Device", devices, help="'auto' uses a GPU (CUDA or Apple MPS) when there is one.")
        exclude_seen = e2.selectbox("Exclude seen items in evaluation", ["auto", "on", "off"],
                                    help="Rank only items the user has not had yet. 'auto' turns this on when nobody "
                                         "in the log repeats an item (then a seen item can never be right).")
        keep = e3.selectbox("Weights to keep", ["best", "last"],
                            help="best = the epoch with the best validation NDCG@10 (default); last = the last "
                                 "validated epoch, for structure that takes many epochs to learn and barely moves "
                                 "overall NDCG (such as the demo's long-range trigger → response pairs).")
        average = e4.number_input("Weight averaging (decay)", 0.0, 0.9999, float(TRAIN_DEFAULTS.weight_average),
                                  step=0.001, format="%.4f",
                                  help="Validate and save a moving average of the weights instead of the last "
                                       "step's: it spans about the last tenth of training (at most ~1,000 steps "
                                       "for 0.999), steadier and usually a little better on small logs. 0 = off.")
        more = st.columns(4)
        weight_decay = more[0].number_input("Weight decay", 0.0, 1.0, float(TRAIN_DEFAULTS.weight_decay), step=0.01,
                                            format="%.3f", help="AdamW's decoupled weight decay (0 = none); "
                                                                "0.05 is a mild regulariser for small logs.")
        for i, spec in enumerate(s for s in advanced if s.name not in DECIDING):
            model_values[spec.name] = option_widget(more[(i + 1) % 4], family, spec, unavailable)
    analyse = st.toggle("Analyse the run when training finishes", value=True,
                        help="Right after training, compute and store everything Evaluate, Explain, Embeddings, "
                             "Compare and the Patterns model tab show (3-4 minutes on the demo), so those pages "
                             "open at once. Off: compute each part later from its page.")
    submitted = st.form_submit_button("Start training", type="primary")

if submitted:
    # Only options changed from the family's defaults go to the trainer: unset ones take the config's defaults.
    changed = {spec.name: model_values[spec.name] for spec in basic + advanced
               if spec.name not in inactive and model_values[spec.name] != spec.default}
    try:
        build_config(family, ds.sequences.vocab.n_items, max_len=int(max_len), **changed)
        train = TrainConfig(max_len=int(max_len), time_budget=float(time_budget), epochs=int(epochs), lr=float(lr),
                            batch_size=None if batch == "auto" else int(batch), patience=int(patience),
                            seed=int(seed), device=device, keep=keep, weight_average=float(average),
                            weight_decay=float(weight_decay))
    except InputError as err:
        st.error(f"{family}: {err}")
    else:
        name, folder = runner.claim_run_folder(root, family)
        spec = TrainSpec(data=runner.prepare_data(ds, root), family=family, out=str(root / name),
                         model_options=changed, train=train, exclude_seen=exclude_seen,
                         analyze=AnalysisRequest() if analyse else None)
        job = runner.start_job(spec, root, name=name, folder=folder, dataset=ds.name, fingerprint=ds.fingerprint,
                               label=f"Training {family}")
        st.session_state.setdefault(JOBS_KEY, []).append(job.name)
        st.toast(f"Started {job.name}")

my_jobs = [j for j in runner.list_jobs(root, kind="train") if j.name in st.session_state.get(JOBS_KEY, [])
           or (j.fingerprint == ds.fingerprint and runner.is_alive(j))]


def compute_note(start: dict) -> str:
    """How the job computes, from its start event (jobs from before 2026-12-07 did not say)."""
    if "precision" not in start:
        return ""
    note = f" · **{start['precision']}**"
    if start["precision"] == "fp32" and start.get("device") == "cpu":
        note += " (this CPU has no native bf16 products)"
    threads = start.get("cpu_threads")
    if threads:
        note += f" · {threads} CPU thread{'s' if threads != 1 else ''} (the cores other programs leave free)"
    return note


@st.fragment(run_every=1.0)
def job_panel(job: runner.Job) -> None:
    events = runner.read_events(job)
    status = runner.status(job, events)
    start = next((e for e in events if e.get("event") == "start"), {})
    steps = [e for e in events if e.get("event") == "step"]
    history = [e for e in events if e.get("event") == "epoch"]
    head = st.columns([3, 1])
    head[0].markdown(f"**{job.name}** on {job.dataset} · device **{start.get('device', '…')}**"
                     + (f" · {start['n_params']:,} parameters" if "n_params" in start else "")
                     + compute_note(start))
    if status == "running":
        last = steps[-1] if steps else {}
        epochs = start.get("epochs") or 1
        frac = ((last.get("epoch", 1) - 1) + last.get("step", 0) / max(last.get("steps", 1), 1)) / epochs
        eta = last.get("eta_seconds")
        text = (f"epoch {last.get('epoch', 1)} · step {last.get('step', 0)}/{last.get('steps', '?')} · "
                f"{last.get('elapsed', time.time() - job.started):.0f} s elapsed"
                + (f" · about {eta:.0f} s left" if isinstance(eta, (int, float)) else ""))
        st.progress(min(max(frac, 0.0), 1.0), text=text)
        if head[1].button("Cancel", key=f"cancel_{job.name}", help="Stop now and keep the best checkpoint so far."):
            runner.cancel(job)
            st.toast("Cancelling: the best checkpoint so far will be kept.")
    elif status in ("done", "analysing"):
        done = next((e for e in reversed(events) if e.get("event") == "done"), {})
        test = (done.get("metrics") or {}).get("test", {})
        finished = (f"Finished ({stop_reason_words(done.get('stopped_reason', 'done'))}): test NDCG@10 "
                    f"{test.get('NDCG@10', float('nan')):.4f}, HR@10 {test.get('HR@10', float('nan')):.4f}.")
        verdict = TrainingVerdict.from_json(done.get("verdict"))
        if verdict is None:  # a job from before verdicts: no judgement to show
            st.success(finished)
        else:
            st.markdown(finished)
            verdict_box(verdict)
        if status == "analysing":
            where = runner.analysis_progress(events)
            st.progress(where["share"],
                        text=f"Analysing the run for the other pages: part {max(where['index'], 1)} of "
                             f"{max(where['total'], 1)}" + (f" ({where['label']})" if where["label"] else ""))
            if head[1].button("Stop analysing", key=f"cancel_{job.name}",
                              help="The run is saved; the parts analysed so far stay stored, the rest can be "
                                   "computed later from each page."):
                runner.cancel(job)
        elif analysed := next((e for e in reversed(events) if e.get("event") == "analysis_done"), None):
            context_reach_box(analysed.get("context_reach"))
            st.caption("Analysed: Evaluate, Explain, Embeddings, Compare and the Patterns model tab open at once.")
        if st.session_state.get(state.RUN_KEY) != str(job.run_dir) and head[1].button("Use this run",
                                                                                    key=f"use_{job.name}"):
            state.set_run(job.run_dir)
            st.rerun()
    elif status == "cancelled":
        saved = (job.run_dir / "config.json").is_file()  # the claimed folder exists, empty, while a job runs
        st.warning("Cancelled; the best checkpoint was saved as a run." if saved
                   else "Cancelled before a checkpoint was worth keeping; nothing was saved.")
    else:
        st.error(f"Training failed: {runner.error_message(job, events)}")
    if history:
        st.plotly_chart(plot_training_curves(history), width="stretch", theme=None, key=f"curve_{job.name}")
        st.caption("Per epoch: training loss and validation NDCG@10 (full ranking). The best epoch is kept.")
    if steps:
        with st.expander("Training loss per step", expanded=status == "running"):
            st.plotly_chart(plot_live_loss(steps), width="stretch", theme=None, key=f"loss_{job.name}")
            st.caption("Cross-entropy over the whole catalogue at each step; it should fall and flatten.")
    if status not in ("running", "analysing") and (st.session_state.get("_job_final") or {}).get(job.name) != status:
        st.session_state.setdefault("_job_final", {})[job.name] = status
        if status == "done" and state.get_run() is None:
            state.set_run(job.run_dir)
        st.rerun(scope="app")


if my_jobs:
    st.subheader("Jobs")
    for job in my_jobs[:3]:
        with st.container(border=True):
            job_panel(job)

st.subheader("Saved runs for this dataset")
runs = [r for r in list_runs(root) if r.fingerprint == ds.fingerprint]
if runs:
    table = pd.DataFrame([{"run": r.name, "model": r.family, "created": r.created,
                           "test NDCG@10": (r.metrics or {}).get("NDCG@10"),
                           "test HR@10": (r.metrics or {}).get("HR@10"),
                           "path": str(r.path)} for r in runs])
    st.dataframe(table.drop(columns="path"), width="stretch", hide_index=True)
    download_table(table, "runs.csv")
    st.caption("Pick the run in use in the sidebar; Evaluate and Recommendations use it. **Compare** puts every run "
               "here side by side.")
    run = state.get_run()
    shown_above = {str(j.run_dir) for j in my_jobs[:3]}
    if run is not None and run.history and str(run.path) not in shown_above:
        st.plotly_chart(plot_training_curves(run.history), width="stretch", theme=None)
        st.caption(f"How {run.path.name} trained: loss per epoch and validation NDCG@10; the best epoch was kept.")
else:
    st.info("No saved runs for this dataset yet: start one above.")

with st.expander("Load a run from a zip (a run folder trained elsewhere, e.g. on a GPU server)"):
    upload = st.file_uploader("Run archive (.zip of the run folder)", type=["zip"],
                              help="Only config.json, model.safetensors, vocab.json, metrics.json and history files "
                                   "are accepted; pickled weights are refused.")
    if upload is not None and st.button("Load run"):
        try:
            path = unpack_run_zip(upload.getvalue(), root)
        except InputError as err:
            st.error(f"{upload.name}: {err}")
        else:
            state.set_run(path)
            st.success(f"Loaded run {path.name}.")
            st.rerun()
