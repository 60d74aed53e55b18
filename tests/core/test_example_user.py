"""The user pages open on is chosen by the data: an active user whose held-out item the run ranks near the top
(on the demo, a planted long-range case the shipped run gets right), never simply the first id."""
from __future__ import annotations

import numpy as np

from seqrec_core.analysis.job import GOOD_RANK, default_user, heldout_ranks
from seqrec_core.analysis.kinds_eval import EVALUATION, RUN, load_evaluation
from seqrec_core.analysis.store import read_unit, weights_id
from seqrec_core.data.dataset import DEMO, DataSource, open_dataset
from seqrec_core.data.synthetic import make_demo_events
from seqrec_core.demo_run import SHIPPED_DEMO_RUN
from seqrec_core.evaluation import default_exclude_seen


def test_without_ranks_the_most_active_user_with_ranks_a_well_ranked_one(small_dataset):
    data = small_dataset.sequences
    ids = data.vocab.user_ids
    by_activity = [ids[int(u)] for u in np.argsort(-data.lengths(), kind="stable")]
    assert default_user(small_dataset) == by_activity[0]
    ranks = dict.fromkeys(by_activity, 50)
    ranks[by_activity[5]] = GOOD_RANK
    ranks[by_activity[6]] = 1
    assert default_user(small_dataset, ranks) == by_activity[5]  # the most active of the well-ranked
    ranks[by_activity[5]] = ranks[by_activity[6]] = 9
    ranks[by_activity[7]] = 4
    assert default_user(small_dataset, ranks) == by_activity[7]  # none in the top 3: the best ranked


def test_on_the_demo_the_shipped_run_opens_on_a_planted_case_it_ranks_in_its_top_3():
    ds = open_dataset(DataSource(path=DEMO))
    truth = make_demo_events(seed=ds.source.demo_seed)[1]
    params = EVALUATION.params({"exclude_seen": default_exclude_seen(ds.sequences)})
    unit = read_unit(SHIPPED_DEMO_RUN, "evaluation", params)
    assert unit is not None and unit.is_fresh(ds.fingerprint, weights_id(SHIPPED_DEMO_RUN), EVALUATION.version)
    ranks = heldout_ranks(load_evaluation(unit, RUN).results[RUN], ds.sequences.vocab)
    user = default_user(ds, ranks)
    assert user in truth.response_users and ranks[user] <= GOOD_RANK
