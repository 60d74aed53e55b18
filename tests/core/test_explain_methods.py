"""The registry of explanation methods is the one place a method is added: a toy method registered in a test shows
up in the CLI's --method choices, runs through the engine, and gets its name and colour in the figures; the
registry itself imports no torch, and what applies to which model comes from it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqrec_core import explain_methods
from seqrec_core.errors import InputError
from seqrec_core.explain_methods import ExplainMethod, applicable, by_key, registered

ROOT = Path(__file__).resolve().parents[2]
TOY = ExplainMethod(key="toy", label="Toy recency", short="Toy", color="#123456",
                    engine="test_explain_methods:toy_engine", phrase="later events count more (a test method)",
                    in_faithfulness=False, in_time_mass=False)


def toy_engine(model, ids, targets, options, times=None):  # noqa: ANN001, ANN201 - the registry's engine contract
    """Attribution = the column index of each event (0 for padding): a recency ranking, no model needed."""
    import torch

    from seqrec_core.explain.engines import Engine

    scores = (ids != 0).float() * torch.arange(ids.shape[1], dtype=torch.float32)  # (B, W)
    return Engine(scores, torch.zeros(ids.shape[0]), None, None)


def test_the_registry_imports_neither_torch_nor_captum() -> None:
    code = ("import sys, seqrec_core.explain_methods, seqrec_core.cli; "
            "print(any(m.split('.')[0] in ('torch', 'captum') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_what_applies_to_which_model() -> None:
    assert applicable("sasrec") == ("ig", "occlusion", "gradshap", "attention", "lime", "kernelshap")
    assert "attention" not in applicable("gru4rec") and "attention" not in applicable("sasrec", has_attention=False)
    assert applicable("markov") == applicable("itemknn") == ("occlusion", "lime", "kernelshap")
    assert by_key("ig").has_convergence_delta and not by_key("lime").has_baseline
    assert by_key("lime").knob == by_key("kernelshap").knob == "samples" and by_key("lime").default_samples
    assert explain_methods.describe("nope") is None and by_key("random").engine is None
    with pytest.raises(ValueError, match="already registered"):
        explain_methods.register(by_key("ig"))


def test_a_toy_method_needs_only_its_entry_and_function(capsys: pytest.CaptureFixture[str]) -> None:
    from seqrec_core.cli import build_parser
    from seqrec_core.explain.attribution import attribute_batch
    from seqrec_core.models import build_model
    from seqrec_core.viz.plot_explain import (
        attribution_table,
        method_color,
        method_name,
        plot_method_agreement,
        plot_method_comparison,
    )

    with registered(TOY):
        # the CLI offers it
        parser = build_parser()
        with pytest.raises(SystemExit):
            parser.parse_args(["explain", "--help"])
        assert "toy" in capsys.readouterr().out
        args = parser.parse_args(["explain", "--run", "r", "--user", "u", "--method", "toy"])
        assert args.method == "toy"
        # the engine runs it (dispatch by the registry), on any model
        model = build_model("sasrec", 30, hidden_size=8, num_layers=1, num_heads=1, max_len=8).eval()
        out = attribute_batch(model, [np.array([3, 4, 5])], np.array([7]), "toy")
        assert out[0].tolist() == [0.0, 1.0, 2.0]  # the batch is padded to its longest history only
        assert "toy" in applicable("sasrec") and "toy" not in applicable("markov")
        # the figures name and colour it
        frames = {m: pd.DataFrame({"item_id": ["a", "b", "c"], "lag": [3, 2, 1], "attribution": v})
                  for m, v in {"ig": [0.1, 0.5, 0.2], "toy": [0.0, 1.0, 2.0]}.items()}
        table = attribution_table(frames)
        assert method_name("toy") == "Toy recency" and method_color("toy") == "#123456"
        comparison = str(plot_method_comparison(table).to_plotly_json())  # every registered method in the table
        assert "Toy recency" in comparison and "#123456" in comparison
        assert "Toy" in str(plot_method_agreement(table).to_plotly_json())
    assert "toy" not in explain_methods.method_keys()
    with pytest.raises(InputError, match="invalid choice: 'toy'"):  # gone again: the CLI refuses it (exit 2)
        build_parser().parse_args(["explain", "--run", "r", "--user", "u", "--method", "toy"])


def test_no_method_is_drawn_in_the_colours_that_mean_against_or_highlight() -> None:
    """Per-method rows colour supportive events in the method's colour and events against the target in orange;
    a method drawn in orange (Occlusion was) reads as 'all against' under a caption that says so."""
    from seqrec_core.viz.plot_explain import NEGATIVE

    colours = [m.color.upper() for m in explain_methods.all_methods()]
    assert NEGATIVE.upper() not in colours
    assert len(set(colours)) == len(colours)  # and no two methods share one
