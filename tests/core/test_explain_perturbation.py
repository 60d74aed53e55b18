"""LIME and Kernel SHAP over history positions: on the planted A -> B model they rank the trigger first, they
are seeded (the same question, the same answer), their samples are a knob, and with occlusion they explain the
Markov and item-kNN baselines through the same verb, in the library and in the CLI; methods that do not apply to
a baseline are refused in one line (exit 2)."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest

# The planted A -> B model (tests/core is on sys.path: pytest's default import mode).
from test_explain_attribution import planted  # noqa: F401
from test_time_aware_explain import _history, data, run  # noqa: F401 - the briefly trained time-aware run

from seqrec_core.cli import main
from seqrec_core.errors import InputError
from seqrec_core.explain import attribute, attribute_batch

SAMPLED = ("lime", "kernelshap")


@pytest.mark.parametrize("method", SAMPLED)
def test_the_trigger_leads_and_the_answer_is_seeded(planted, method: str) -> None:  # noqa: F811
    run, data = planted  # noqa: F811 - the planted model, not the time-aware fixtures
    a = attribute(run, data, "u001", "heldout", method, samples=120)  # odd user: held-out "b", "a" 3-5 back
    assert a.target_item == "b" and a.samples == 120 and a.steps is None and a.convergence_delta is None
    assert int(np.argmax(a.scores)) == a.item_ids.index("a")
    again = attribute(run, data, "u001", "heldout", method, samples=120)
    np.testing.assert_array_equal(a.scores, again.scores)
    doc = a.to_json()
    assert doc["method"] == method and doc["samples"] == 120 and doc["model"] == "run"
    # a batch explains each history as a single call would (seeded per history)
    split = data.split("test")
    batch = attribute_batch(run.model, split.histories[:3], split.targets[:3], method, samples=40)
    single = attribute_batch(run.model, split.histories[1:2], split.targets[1:2], method, samples=40)
    np.testing.assert_allclose(batch[1], single[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model", ["markov", "itemknn"])
def test_baselines_are_explained_by_the_perturbation_methods(planted, model: str) -> None:  # noqa: F811
    run, data = planted  # noqa: F811 - the planted model, not the time-aware fixtures
    occ = attribute(run, data, "u002", None, "occlusion", model=model)
    assert occ.model == model and len(occ.scores) == len(data.sequences[data.vocab.user_index("u002")]) - 1
    if model == "markov":  # only the latest event decides the next item: removing any other one changes nothing
        assert np.count_nonzero(occ.scores[:-1]) == 0 and occ.scores[-1] > 0
    for method in SAMPLED:
        a = attribute(run, data, "u002", None, method, samples=40, model=model)
        assert a.target_item == occ.target_item and np.isfinite(a.scores).all()
    with pytest.raises(InputError, match="occlusion, lime, kernelshap"):
        attribute(run, data, "u002", None, "ig", model=model)


@pytest.mark.parametrize("kwargs", [{"samples": 5}, {"samples": True}, {"model": "popularity"}])
def test_bad_samples_or_model_is_one_line_input_error(planted, kwargs) -> None:  # noqa: F811
    run, data = planted  # noqa: F811 - the planted model, not the time-aware fixtures
    with pytest.raises(InputError) as err:
        attribute(run, data, "u001", None, "lime", **kwargs)
    assert "\n" not in str(err.value)


def test_cli_explains_a_baseline_and_refuses_what_does_not_apply(tiny_run, small_dataset, capsys, caplog) -> None:
    user = small_dataset.sequences.vocab.user_ids[1]
    code = main(["explain", "--run", str(tiny_run), "--user", user, "--method", "lime", "--samples", "30",
                 "--model", "markov"])
    out = capsys.readouterr()
    assert code == 0, out.err
    doc = json.loads(out.out)
    assert doc["model"] == "markov" and doc["method"] == "lime" and doc["samples"] == 30 and doc["history"]
    with caplog.at_level(logging.WARNING):
        code = main(["explain", "--run", str(tiny_run), "--user", user, "--method", "ig", "--model", "itemknn"])
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert code == 2 and out.out == "" and len(lines) == 1 and "Traceback" not in out.err
    assert "--method ig cannot explain the itemknn baseline" in lines[0] and "kernelshap" in lines[0]


@pytest.mark.parametrize("method", SAMPLED)
def test_a_time_aware_run_keeps_each_events_time(run, data, method: str) -> None:  # noqa: F811
    hist, times = _history(data)
    target = np.array([int(data.sequences[0][-1])])
    a = attribute_batch(run.model, [hist], target, method, samples=30, times=[times])[0]
    b = attribute_batch(run.model, [hist], target, method, samples=30, times=[times + 6 * 3600])[0]
    assert len(a) == min(len(hist), run.max_len) and np.isfinite(a).all() and not np.allclose(a, b, atol=1e-6)
    with pytest.raises(InputError):  # the times are required, as for every other method
        attribute_batch(run.model, [hist], target, method, samples=30)
