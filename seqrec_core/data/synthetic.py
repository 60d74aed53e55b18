"""The built-in demo log: a shop's behaviour over 90 days, with structure planted where the analysis must find it.

Planted, and returned as :class:`DemoTruth` so tests and the dashboard can check that it is recovered:
- a daily rhythm (sessions start around 12:00 and 20:00 UTC) and a weekly one (weekends ~1.6x busier);
- bursts: a few items are very popular for 2-3 days and rare otherwise;
- short-range transitions: after item A, item B comes next with high probability;
- long-range trigger -> response pairs: after a trigger item, one specific response item follows 20-40 events
  later with probability 0.9 (ten pairs, each with its own delay +-2 inside 20-40; up to five plantings per
  user, interleaved), and the response never appears otherwise. For about a quarter of the users the response
  is the last (held-out test) event, so a model that uses long histories can be told apart from one that
  does not;
- user timing segments: ~8% clockwork users (once a day at their own hour: periodic and regular) and ~8%
  Poisson users (uniformly random times), next to the session shoppers (bursty);
- daypart tastes: by day (06-15 UTC) more Coffee, Kitchen and Garden, in the evening (17-24 UTC) more Gaming,
  Audio and Books, so a model that knows the time of the request (time-aware SASRec) can beat one that only
  sees the item sequence;
- optionally (``shift_weeks`` > 0; off by default, so the shipped demo log stays byte-identical) a taste shift in
  the last weeks: a group of users moves to a new category of items that did not exist before (``SHIFT_CATEGORY``),
  so a run trained before the shift and one updated on the grown log differ where the truth says they should
  (``DemoTruth.shift_users`` / ``shift_items``; the "What changed" view and ``bench/warm_start.py`` read it).
Everything is vectorised numpy; the default 2,000 x ~50 events take well under a second.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from seqrec_core.errors import InputError

START = pd.Timestamp("2024-01-01", tz="UTC")  # a Monday
SPAN_DAYS = 90
PEAK_HOURS = [12, 20]
WEEKEND_BOOST = 1.6
FOLLOW_PROB = 0.9  # P(response 20-40 events after a trigger)
TRANSITION_PROB = 0.7  # P(B right after A)
PAIR_LAG = (20, 40)
LAG_JITTER = 2  # a pair's delays vary by +-2 events around its own delay
RESPONSE_USER_SHARE = 0.25  # target share of users whose last event is a planted response
# Ten pairs, each planted up to four more times per user (interleaved) in the training part: ~460 plantings per
# pair. With 20 pairs and two plantings per user (~90 per pair) the default model never learned them (measured:
# no held-out response in its top 10 after 60 epochs); with this volume it ranks ~100 of ~500 in its top 10.
MAX_PAIRS = 10
EARLIER_PLANTINGS = 4
CLOCKWORK_USER_SHARE = 0.08  # users who act once a day at their own fixed hour (periodic, regular gaps)
POISSON_USER_SHARE = 0.08  # users whose events fall at random times (no sessions, no rhythm)
POP_EXPONENT = 0.8  # Zipf exponent of the ordinary items' popularity
FAVOURITE_SHARE = 0.5  # share of a user's ordinary events drawn from their favourite category
BURST_PROB = 0.06  # share of events inside a burst window that go to the burst item
# Daypart tastes: (first hour, last hour + 1) in UTC -> categories that gain. A share DAYPART_SHARE of the events
# not drawn from the user's favourite category is drawn from the daypart's categories instead.
DAYPART_CATEGORIES: dict[tuple[int, int], list[str]] = {(6, 15): ["Coffee", "Kitchen", "Garden"],
                                                          (17, 24): ["Gaming", "Audio", "Books"]}
DAYPART_SHARE = 0.6
# The optional taste shift: from ``shift_weeks`` before the end, SHIFT_USER_SHARE of the users active then draw
# SHIFT_PROB of their events from the new category (Zipf popularity over its items) instead of their usual items.
SHIFT_CATEGORY = "Smart home"
SHIFT_TITLES = ["Smart plug", "Smart bulb", "Smart thermostat", "Video doorbell", "Smart speaker", "Robot vacuum",
                "Smart lock", "Motion sensor", "Smart display", "Window sensor", "Smart smoke alarm", "Mesh router"]
SHIFT_USER_SHARE = 0.3
SHIFT_PROB = 0.6
SHIFT_SEED_SALT = 7_2026  # the shift's own random stream: the default log's draws are untouched

CATALOGUE: dict[str, list[str]] = {
    "Running": ["Trail running shoes", "Road running shoes", "Running socks", "Running vest", "Compression tights",
                "Running cap", "Hydration belt", "Reflective armband"],
    "Hiking": ["Hiking boots", "Trekking poles", "Daypack", "Rain jacket", "Headlamp", "Fleece jacket", "Map case",
               "Gaiters"],
    "Cycling": ["Bike helmet", "Cycling gloves", "Bike lights", "Saddle bag", "Cycling jersey", "Bike lock",
                "Mini pump", "Bottle cage"],
    "Kitchen": ["Chef's knife", "Cutting board", "Cast iron pan", "Mixing bowls", "Spice rack", "Kitchen scale",
                "Dutch oven", "Vegetable peeler"],
    "Coffee": ["Coffee grinder", "Pour-over kettle", "Ground coffee", "Coffee beans", "Milk frother", "French press",
               "Travel mug", "Paper filters"],
    "Books": ["Mystery novel", "Cookbook", "Travel guide", "Science fiction novel", "Biography", "Poetry collection",
              "History book", "Picture book"],
    "Audio": ["Wireless earbuds", "Bluetooth speaker", "Over-ear headphones", "Soundbar", "USB microphone",
              "Audio cable", "Headphone stand", "Portable radio"],
    "Gaming": ["Game controller", "Gaming headset", "Strategy game", "Racing game", "Puzzle game", "Gaming mouse",
               "Mechanical keyboard", "Controller charger"],
    "Garden": ["Garden hose", "Pruning shears", "Seed kit", "Plant pots", "Watering can", "Garden gloves",
               "Compost bin", "Lawn fertiliser"],
    "Skincare": ["Face cleanser", "Moisturiser", "Sunscreen", "Lip balm", "Face serum", "Hand cream", "Face mask",
                 "Eye cream"],
    "Toys": ["Building blocks", "Jigsaw puzzle", "Plush bear", "Board game", "Toy car", "Doll house", "Kite",
             "Science kit"],
    "Home office": ["Desk lamp", "Office chair", "Notebook", "Monitor stand", "Desk organiser", "Fountain pen",
                    "Webcam", "Laptop sleeve"],
}
# (category, trigger, response): buy the first, need the second a few weeks of shopping later.
PAIRS = [
    ("Coffee", "Espresso machine", "Descaling tablets"), ("Coffee", "Cold brew maker", "Cold brew filter bags"),
    ("Hiking", "Camping tent", "Tent seam sealer"), ("Hiking", "Water filter pump", "Filter cartridge"),
    ("Cycling", "Road bike", "Spare inner tubes"), ("Cycling", "Bike chain", "Chain lube"),
    ("Home office", "Inkjet printer", "Ink cartridge set"), ("Home office", "Label maker", "Label tape refill"),
    ("Skincare", "Electric toothbrush", "Toothbrush heads"), ("Skincare", "Electric shaver", "Shaver foil"),
    ("Garden", "Lawn mower", "Mower blade"), ("Garden", "Hedge trimmer", "Trimmer oil"),
    ("Toys", "Model railway set", "Railway track extension"), ("Toys", "Remote control car", "RC battery pack"),
    ("Gaming", "Game console", "Console storage card"), ("Gaming", "VR headset", "VR face cushion"),
    ("Audio", "Record player", "Replacement stylus"), ("Audio", "Hi-fi amplifier", "Speaker cable"),
    ("Kitchen", "Bread maker", "Bread mix"), ("Running", "GPS running watch", "Watch charging clip"),
]


@dataclass
class DemoTruth:
    """What was planted in the demo log; the analysis pages and tests must recover it."""

    seed: int
    daily_period_hours: float = 24.0
    weekly_period_hours: float = 168.0
    peak_hours: list[int] = field(default_factory=lambda: list(PEAK_HOURS))
    burst_items: list[dict] = field(default_factory=list)  # {"item", "start", "end"}
    transitions: dict[str, str] = field(default_factory=dict)  # item -> item that tends to follow immediately
    trigger_response: list[tuple[str, str]] = field(default_factory=list)
    pair_lag: tuple[int, int] = PAIR_LAG
    response_users: list[str] = field(default_factory=list)  # last event = planted response, trigger 20-40 before
    clockwork_users: list[str] = field(default_factory=list)  # one event a day at a fixed hour (periodic, regular)
    poisson_users: list[str] = field(default_factory=list)  # events at uniformly random times
    # "HH-HH" UTC hour range -> categories drawn more often then; the share of non-favourite draws they take
    daypart_categories: dict[str, list[str]] = field(default_factory=dict)
    daypart_share: float = DAYPART_SHARE
    follow_prob: float = FOLLOW_PROB
    transition_prob: float = TRANSITION_PROB
    weekend_boost: float = WEEKEND_BOOST
    start: pd.Timestamp = START
    end: pd.Timestamp = START + pd.Timedelta(days=SPAN_DAYS)
    # The taste shift (only with shift_weeks > 0): from shift_start on, shift_users draw much of their behaviour
    # from shift_items (new item ids, category shift_category), which no event before shift_start holds.
    shift_start: pd.Timestamp | None = None
    shift_users: list[str] = field(default_factory=list)
    shift_items: list[str] = field(default_factory=list)
    shift_category: str | None = None


def _catalogue(n_items: int, n_pairs: int, rng: np.random.Generator) -> tuple[list[str], np.ndarray, list[str]]:
    """Titles and categories; items 0..2*n_pairs-1 are the triggers and responses (shuffled ids later)."""
    cats = list(CATALOGUE)
    titles: list[str] = []
    cat_of: list[int] = []
    for trig_resp in PAIRS[:n_pairs]:
        cat_of.append(cats.index(trig_resp[0]))
        titles.append(trig_resp[1])
    for trig_resp in PAIRS[:n_pairs]:
        cat_of.append(cats.index(trig_resp[0]))
        titles.append(trig_resp[2])
    rest = n_items - 2 * n_pairs
    rest_cat = rng.permutation(np.arange(rest) % len(cats))
    counter: dict[str, int] = {}
    nouns = {c: rng.permutation(len(CATALOGUE[c])) for c in cats}
    for k, c in enumerate(rest_cat):
        noun = CATALOGUE[cats[c]][nouns[cats[c]][(k // len(cats)) % len(CATALOGUE[cats[c]])]]
        counter[noun] = counter.get(noun, 0) + 1
        titles.append(f"{noun} #{counter[noun]}")
        cat_of.append(int(c))
    return titles, np.asarray(cat_of), cats


def _session_times(lengths: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-event unix seconds, sorted within each user, and each user's timing kind (USER_KINDS index).

    Most users shop in sessions of a few events minutes apart, session starts drawn from the daily (two peaks)
    and weekly (busy weekends) profile, spread over the 90 days. Clockwork users act once a day at their own
    hour (a strict 24 h period); Poisson users act at uniformly random times (the temporal null model)."""
    n_ev = int(lengths.sum())
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    user_of = np.repeat(np.arange(len(lengths)), lengths)
    new_session = rng.random(n_ev) < 0.2
    new_session[starts == np.arange(n_ev)] = True
    sess = np.cumsum(new_session) - 1
    sess_user = user_of[new_session]
    days = np.arange(SPAN_DAYS)
    weekday = (START.day_of_week + days) % 7
    p_day = np.where(weekday >= 5, WEEKEND_BOOST, 1.0)
    hours = np.arange(24)
    p_hour = 0.08 + sum(np.exp(-0.5 * (np.minimum(abs(hours - h), 24 - abs(hours - h)) / 1.5) ** 2)
                        for h in PEAK_HOURS)
    p_hour[1:7] *= 0.3  # quiet nights
    n_sess = len(sess_user)
    start_s = (rng.choice(days, n_sess, p=p_day / p_day.sum()) * 86400
               + rng.choice(hours, n_sess, p=p_hour / p_hour.sum()) * 3600 + rng.integers(0, 3600, n_sess))
    start_s = start_s[np.lexsort((start_s, sess_user))]  # k-th session of a user = its k-th earliest start
    gaps = np.where(new_session, 0, np.clip(rng.lognormal(np.log(60), 1.0, n_ev), 1, 1800)).astype(np.int64)
    csum = np.cumsum(gaps)
    offset = csum - csum[np.flatnonzero(new_session)][sess]
    t = start_s[sess] + offset + int(START.timestamp())

    n_users = len(lengths)
    kind = rng.choice(3, n_users, p=[1 - CLOCKWORK_USER_SHARE - POISSON_USER_SHARE, CLOCKWORK_USER_SHARE,
                                     POISSON_USER_SHARE])
    kind[(kind == 1) & (lengths > SPAN_DAYS)] = 0  # one event a day must fit in the span
    ev_kind = kind[user_of]
    clock = ev_kind == 1
    hour_u = rng.choice(hours, n_users, p=p_hour / p_hour.sum())
    first_day = rng.integers(0, np.maximum(SPAN_DAYS - lengths, 0) + 1)  # (U,)
    k_in_user = np.arange(n_ev) - starts
    t[clock] = (int(START.timestamp()) + (first_day[user_of[clock]] + k_in_user[clock]) * 86400
                + hour_u[user_of[clock]] * 3600 + rng.integers(-300, 301, int(clock.sum())))
    poisson = ev_kind == 2
    t[poisson] = int(START.timestamp()) + rng.integers(0, SPAN_DAYS * 86400, int(poisson.sum()))
    return t[np.lexsort((t, user_of))], kind


def _taste_shift(items: np.ndarray, times: np.ndarray, user_of: np.ndarray, planted: np.ndarray, n_items: int,
                 shift_weeks: int, seed: int) -> tuple[np.ndarray, int, np.ndarray]:
    """``items`` with the taste shift planted (new item indices n_items.., one per SHIFT_TITLES), the shift's
    start (unix seconds) and the shifted users' rows. Planted trigger/response events are left alone."""
    rng = np.random.default_rng([seed, SHIFT_SEED_SALT])
    start_s = int((START + pd.Timedelta(days=SPAN_DAYS - 7 * shift_weeks)).timestamp())
    late = times >= start_s
    active = np.unique(user_of[late])
    users = np.sort(rng.choice(active, round(SHIFT_USER_SHARE * len(active)), replace=False)) if len(active) else \
        np.zeros(0, dtype=np.int64)
    n_new = len(SHIFT_TITLES)
    pop = 1.0 / (1 + np.arange(n_new)) ** POP_EXPONENT
    moved = late & np.isin(user_of, users) & ~planted & (rng.random(len(items)) < SHIFT_PROB)
    out = items.copy()
    out[moved] = n_items + rng.choice(n_new, int(moved.sum()), p=pop / pop.sum())
    return out, start_s, users


def make_demo_events(n_users: int = 2000, events_per_user: int = 50, n_items: int = 800,
                     seed: int = 0, shift_weeks: int = 0) -> tuple[pd.DataFrame, DemoTruth]:
    """The demo log (canonical event table with titles and categories) and what was planted in it.

    ``shift_weeks`` > 0 plants a taste shift in the last that many weeks (see the module docstring); 0 (the
    default) gives exactly the log it always gave."""
    if n_users < 1 or events_per_user < 3 or n_items < 40:
        raise InputError("the demo needs n_users >= 1, events_per_user >= 3 and n_items >= 40")
    if isinstance(shift_weeks, bool) or not isinstance(shift_weeks, int) or not 0 <= shift_weeks <= SPAN_DAYS // 7:
        raise InputError(f"shift_weeks={shift_weeks!r} must be a whole number of weeks from 0 (no shift) to "
                         f"{SPAN_DAYS // 7}")
    rng = np.random.default_rng(seed)
    n_pairs = min(MAX_PAIRS, len(PAIRS), n_items // 40 * 2 or 1)
    titles, cat_of, cats = _catalogue(n_items, n_pairs, rng)
    triggers, responses = np.arange(n_pairs), np.arange(n_pairs, 2 * n_pairs)
    normal = np.arange(2 * n_pairs, n_items)

    # Popularity (Zipf over the ordinary items) and each user's favourite category.
    pop = np.zeros(n_items)
    pop[normal] = 1.0 / (1 + rng.permutation(len(normal))) ** POP_EXPONENT
    by_pop = normal[np.argsort(-pop[normal])]
    n_bursts = min(8, max(1, n_items // 100))
    burst_items = rng.choice(by_pop[len(by_pop) // 2:], n_bursts, replace=False)  # quiet items, loud for days
    ordinary = np.setdiff1d(normal, burst_items)
    n_trans = min(60, len(ordinary) // 6)
    sources = rng.choice(np.setdiff1d(by_pop[: len(by_pop) // 3], burst_items), n_trans, replace=False)
    targets = rng.choice(np.setdiff1d(ordinary, sources), n_trans, replace=False)
    successor = np.full(n_items, -1)
    successor[sources] = targets
    base_p = np.zeros(n_items)
    base_p[normal] = pop[normal]
    base_p[burst_items] *= 0.2
    order = np.argsort(cat_of, kind="stable")  # items grouped by category: one cdf per category, stacked
    seg_cdf = np.zeros(n_items)
    for c in range(len(cats)):
        idx = np.flatnonzero(cat_of[order] == c)
        w = base_p[order[idx]]
        seg_cdf[idx] = c + (np.cumsum(w) / w.sum() if w.sum() > 0 else np.linspace(0, 1, len(idx)))
    glob_cdf = np.cumsum(base_p) / base_p.sum()

    # Sequence lengths: 20..120 around 50 for the defaults.
    lo, hi = max(3, round(0.4 * events_per_user)), max(4, round(2.4 * events_per_user))
    lengths = np.clip(lo + rng.gamma(2.0, 0.3 * events_per_user, n_users), lo, hi).astype(np.int64)
    n_ev = int(lengths.sum())
    starts = np.cumsum(lengths) - lengths
    user_of = np.repeat(np.arange(n_users), lengths)

    times, user_kind = _session_times(lengths, rng)

    # Items: half from the user's favourite category, half from global popularity (in a daypart, partly from the
    # daypart's categories), then A -> B transitions.
    fav = rng.integers(0, len(cats), n_users)[user_of]
    from_fav = rng.random(n_ev) < FAVOURITE_SHARE
    u = rng.random(n_ev)
    hour = (times - int(START.timestamp())) // 3600 % 24
    cat_draw = fav.copy()  # category of a category draw: the favourite, or a daypart category
    from_daypart = np.zeros(n_ev, dtype=bool)
    for (h0, h1), names in DAYPART_CATEGORIES.items():
        here = ~from_fav & (hour >= h0) & (hour < h1) & (rng.random(n_ev) < DAYPART_SHARE)
        cat_draw[here] = rng.choice([cats.index(c) for c in names], int(here.sum()))
        from_daypart |= here
    by_category = from_fav | from_daypart
    items = np.where(by_category, order[np.minimum(np.searchsorted(seg_cdf, cat_draw + u), n_items - 1)],
                     np.minimum(np.searchsorted(glob_cdf, u), n_items - 1))
    follow_draw = rng.random(n_ev) < TRANSITION_PROB
    for j in range(1, int(lengths.max())):
        at = starts[lengths > j] + j
        prev = successor[items[at - 1]]
        hit = (prev >= 0) & follow_draw[at]
        items[at[hit]] = prev[hit]

    # Trigger -> response plantings: one ending at the last event for the response users, up to two earlier.
    planted = np.zeros(n_ev, dtype=bool)
    lag_lo, lag_hi = PAIR_LAG
    eligible = lengths >= lag_hi + 2
    share = min(1.0, RESPONSE_USER_SHARE / max(eligible.mean(), 1e-9))
    is_resp_user = eligible & (rng.random(n_users) < share)
    # Each pair has its own delay inside PAIR_LAG (+-LAG_JITTER events): like a consumable that runs out after
    # about the same use. Measured: with one uniform 20-40 delay for every planting the hazard is too flat to
    # learn sharply (IG top-3 hit 0.74 at best); with per-pair delays 0.80 (bench/RESULTS.md).
    pair_lag = rng.integers(lag_lo + LAG_JITTER, lag_hi - LAG_JITTER + 1, n_pairs)

    def draw_lags(pair: np.ndarray) -> np.ndarray:
        return pair_lag[pair] + rng.integers(-LAG_JITTER, LAG_JITTER + 1, len(pair))

    # Each user's pairs in a random order (distinct while there are enough pairs): a user never gets the same
    # pair twice, so a response is never "used up" by another planting between its trigger and itself.
    pair_order = rng.permuted(np.tile(np.arange(n_pairs), (n_users, 1)), axis=1)  # (U, P)
    pair = pair_order[:, 0]
    lag = draw_lags(pair)
    last = starts + lengths - 1
    ru = np.flatnonzero(is_resp_user)
    items[last[ru]], items[last[ru] - lag[ru]] = responses[pair[ru]], triggers[pair[ru]]
    planted[last[ru]] = planted[last[ru] - lag[ru]] = True
    # Earlier plantings anywhere in the training part, interleaved (a trigger may sit between another pair's
    # trigger and response) but never on an already planted position.
    for k in range(1, EARLIER_PLANTINGS + 1):
        pair = pair_order[:, k % n_pairs]
        lag = draw_lags(pair)
        # A response may be the validation event (so early stopping sees whether the pairs are learned), never
        # the test event: that one is the response users' alone.
        last_r = lengths - 2
        ok = (last_r >= lag) & (rng.random(n_users) < 0.85)
        r_pos = lag + np.floor(rng.random(n_users) * (last_r - lag + 1)).astype(np.int64)
        pu = np.flatnonzero(ok)
        t_at, r_at = starts[pu] + r_pos[pu] - lag[pu], starts[pu] + r_pos[pu]
        free = ~planted[t_at] & ~planted[r_at]
        pu, t_at, r_at = pu[free], t_at[free], r_at[free]
        items[t_at] = triggers[pair[pu]]
        planted[t_at] = True
        follows = rng.random(len(pu)) < FOLLOW_PROB
        items[r_at[follows]] = responses[pair[pu][follows]]
        planted[r_at] = True  # a missed response keeps its ordinary item but no burst overwrites the slot

    # Bursts: inside each item's 2-3 day window a share of all events goes to it.
    bursts = []
    for b in burst_items:
        b_start = int(START.timestamp()) + int(rng.integers(5 * 86400, (SPAN_DAYS - 8) * 86400))
        b_end = b_start + int(rng.integers(48 * 3600, 72 * 3600))
        inside = (times >= b_start) & (times < b_end) & ~planted & (rng.random(n_ev) < BURST_PROB)
        items[inside] = b
        bursts.append((b, b_start, b_end))

    # Ids: shuffled so that trigger/response/burst items are not recognisable by number.
    width = len(str(n_items))
    item_ids = np.array([f"i{k:0{width}d}" for k in rng.permutation(n_items) + 1], dtype=object)
    user_ids = np.array([f"u{k:0{max(4, len(str(n_users)))}d}" for k in range(1, n_users + 1)], dtype=object)
    titles_arr = np.asarray(titles, dtype=object)
    shift: dict = {}
    if shift_weeks:
        items, start_s, users = _taste_shift(items, times, user_of, planted, n_items, shift_weeks, seed)
        new_ids = [f"s{k:02d}" for k in range(1, len(SHIFT_TITLES) + 1)]  # ids the catalogue never had
        item_ids = np.concatenate([item_ids, np.asarray(new_ids, dtype=object)])
        titles_arr = np.concatenate([titles_arr, np.asarray(SHIFT_TITLES, dtype=object)])
        cats, cat_of = [*cats, SHIFT_CATEGORY], np.concatenate([cat_of, np.full(len(new_ids), len(cats))])
        shift = {"shift_start": pd.Timestamp(start_s, unit="s", tz="UTC"), "shift_category": SHIFT_CATEGORY,
                 "shift_users": [str(u) for u in user_ids[users]], "shift_items": new_ids}
    events = pd.DataFrame({
        "user_id": pd.array(user_ids[user_of], dtype="str"),
        "item_id": pd.array(item_ids[items], dtype="str"),
        "timestamp": pd.to_datetime(times, unit="s", utc=True).astype("datetime64[ns, UTC]"),
        "item_title": pd.array(titles_arr[items], dtype="str"),
        "item_category": pd.array(np.asarray(cats, dtype=object)[cat_of[items]], dtype="str"),
    })
    truth = DemoTruth(
        seed=seed,
        burst_items=[{"item": str(item_ids[b]), "start": pd.Timestamp(s, unit="s", tz="UTC"),
                      "end": pd.Timestamp(e, unit="s", tz="UTC")} for b, s, e in bursts],
        transitions={str(item_ids[a]): str(item_ids[b]) for a, b in zip(sources, targets, strict=True)},
        trigger_response=[(str(item_ids[t]), str(item_ids[r])) for t, r in zip(triggers, responses, strict=True)],
        response_users=[str(user_ids[k]) for k in ru],
        clockwork_users=[str(u) for u in user_ids[user_kind == 1]],
        poisson_users=[str(u) for u in user_ids[user_kind == 2]],
        daypart_categories={f"{h0:02d}-{h1:02d}": list(names) for (h0, h1), names in DAYPART_CATEGORIES.items()},
        **shift,
    )
    return events, truth
