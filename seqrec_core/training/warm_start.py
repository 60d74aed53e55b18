"""Warm start: update a trained run on a log that has grown, instead of training again from scratch (issue 17).

Why: behaviour keeps arriving, and a full retrain repeats what the old run already learned. The old run's
weights carry over: every item that is still in the catalogue keeps its vector (its row is copied to the item's
new index), items the old run never saw get fresh vectors made exactly as the family makes them for a new model
(its own init; with a text encoder, their titles go through the same encoder into the text part), then their
output rows are imprinted from the hidden states that precede them in the grown log (``training/imprint.py``: why),
and every other weight (positions, attention, the RNN, the output bias) is kept as it is. Users need nothing: no family
has per-user parameters (a user is their history), so new users are served from their events alone. The update
then trains with the old run's training settings for a short budget.

The default budget is ``RESUME_SHARE`` of the old run's epochs (at least one full epoch), not of its seconds: a
retrain on the grown log needs at least the old run's epochs again, each longer, so the update stays near a fifth of
it. Why epochs: measured on the demo with a planted shift (``bench/warm_start.py``, 600 users, a loaded 2-core CPU),
a budget of 10% of the old run's seconds ended inside the first epoch, and the update ranked none of the new items
in the top 10 of the 157 users who moved to them (the retrain: 146); new items need every window of the grown log
at least once. A budget in epochs also does the same work however busy the machine is.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from seqrec_core.data.sequences import SequenceData, Vocab
from seqrec_core.errors import InputError
from seqrec_core.training.config import TrainConfig, seed_everything

log = logging.getLogger(__name__)

# Default budget: this share of the old run's epochs, rounded up. A fifth, not a tenth: on the shifted 300-user demo
# (bench/RESULTS.md, 3 seeds) a tenth left one seed 0.013 behind the retrain; a fifth, 0.004 on average in 18-25% of
# its time.
RESUME_SHARE = 0.2
MIN_RESUME_EPOCHS = 1  # ... and at least one full pass over the grown log
# The update's learning rate: this multiple of the run's, unless given. Why: a short update must carry new items'
# rows (and the taste of the users who moved to them) as far as a retrain does in a fifth of its epochs. Measured
# (bench/warm_start.py, 300-user demo with a planted shift, converged old run and retrain, default 5-epoch update,
# newest-period NDCG@10 against the retrain's 0.2460): 0.3x lr 0.2137, 1x 0.2210, 3x 0.2330, 5x 0.2487.
RESUME_LR_FACTOR = 5.0
NEW_ITEM_STARTS = ("imprint", "init")  # how new items' vectors start: imprinted from the log, or the family's init
TEXT_TABLE = "item_emb.text.text"  # the frozen title matrix: re-encoded for the new catalogue, never copied


@dataclass(frozen=True)
class VocabMap:
    """Where each old item's row goes in the new model: ``old_rows[k]`` -> ``new_rows[k]`` (padding 0 -> 0)."""

    old_rows: np.ndarray  # (K,) int64 old item indices of the items both catalogues hold, padding first
    new_rows: np.ndarray  # (K,) int64 their indices in the new catalogue
    items_new: int  # items of the new log the old run never saw (fresh vectors)
    items_dropped: int  # items of the old run the new log no longer holds (their rows are left behind)
    users_kept: int
    users_new: int
    items_imprinted: int = 0  # new items whose output rows were imprinted from the log (see warm_start_model)

    @property
    def items_kept(self) -> int:
        return int(len(self.old_rows) - 1)

    def to_json(self) -> dict:
        return {"items_kept": self.items_kept, "items_new": self.items_new, "items_dropped": self.items_dropped,
                "users_kept": self.users_kept, "users_new": self.users_new, "items_imprinted": self.items_imprinted}


def map_vocab(old: Vocab, new: Vocab) -> VocabMap:
    """How the old run's vocabulary maps into the new log's; refused when they share no item (nothing to keep)."""
    old_index = {item: i + 1 for i, item in enumerate(old.item_ids)}
    pairs = [(old_index[item], j + 1) for j, item in enumerate(new.item_ids) if item in old_index]
    if not pairs:
        raise InputError(f"the new log shares no item with the run ({old.n_items:,} items, e.g. "
                         f"'{old.item_ids[0] if old.item_ids else '?'}'): it is another catalogue, so nothing can be "
                         "kept; check --item-col, or train a new run on it without --resume")
    old_rows = np.array([0] + [p[0] for p in pairs], dtype=np.int64)
    new_rows = np.array([0] + [p[1] for p in pairs], dtype=np.int64)
    old_users = set(old.user_ids)
    kept_users = sum(1 for user in new.user_ids if user in old_users)
    return VocabMap(old_rows=old_rows, new_rows=new_rows, items_new=new.n_items - len(pairs),
                    items_dropped=old.n_items - len(pairs), users_kept=kept_users,
                    users_new=len(new.user_ids) - kept_users)


def item_indexed_keys(model: nn.Module) -> set[str]:
    """The state-dict entries with one row per item (input table, untied output table, title matrix, ...).

    Found by building the same family for a catalogue of another size on the meta device (no memory, no init)
    and seeing which shapes change: a family that adds an item table later is mapped without a change here."""
    config = model.config
    probe_cfg = dataclasses.replace(config, n_items=config.n_items + 7)
    with torch.device("meta"):
        probe = type(model)(probe_cfg)
    mine, other = model.state_dict(), probe.state_dict()
    return {key for key, value in mine.items() if key in other and tuple(other[key].shape) != tuple(value.shape)}


def warm_start_model(old_model: nn.Module, old_vocab: Vocab, vocab: Vocab, *, seed: int = 42, device: str = "cpu",
                     text_progress: Callable[[int, int], None] | None = None,
                     imprint_from: SequenceData | None = None) -> tuple[nn.Module, VocabMap]:
    """A model of the old model's family and options for ``vocab``'s catalogue, holding the old weights.

    Kept items' rows are copied exactly, new items keep the new model's own initial rows (seeded by ``seed``),
    with a text encoder the title matrix is encoded for the new catalogue; every other weight is the old one.
    With ``imprint_from`` (the grown log, ``vocab``'s data), new items' output rows are then imprinted from the
    hidden states before their training occurrences (:mod:`seqrec_core.training.imprint`)."""
    from seqrec_core.models import build_model
    from seqrec_core.models.text_features import with_item_text

    mapping = map_vocab(old_vocab, vocab)
    options = {k: v for k, v in old_model.config.to_dict().items() if k not in ("n_items", "family")}
    seed_everything(seed)
    options, text_matrix = with_item_text(options, vocab, device=device, progress=text_progress)
    model = build_model(old_model.config.family, vocab.n_items, **options)
    if text_matrix is not None:
        model.item_emb.text.set_matrix(text_matrix)
    per_item = item_indexed_keys(model)
    old_state, new_state = old_model.state_dict(), model.state_dict()
    old_rows, new_rows = torch.as_tensor(mapping.old_rows), torch.as_tensor(mapping.new_rows)
    with torch.no_grad():
        for key, target in new_state.items():
            source = old_state.get(key)
            if source is None:
                raise InputError(f"the run's weights lack '{key}', which its family has now; retrain it")
            if key == TEXT_TABLE and text_matrix is not None:
                continue  # encoded above for every item, new ones by their titles
            if key in per_item:
                target[new_rows] = source[old_rows].to(target.dtype)  # (K, ...) rows of the kept items
            elif tuple(source.shape) == tuple(target.shape):
                target.copy_(source)
            else:
                raise InputError(f"the run's '{key}' has shape {tuple(source.shape)}, not {tuple(target.shape)} as "
                                 "its family builds it now; retrain it")
    if imprint_from is not None:
        from seqrec_core.training.imprint import imprint_new_items

        new_items = np.setdiff1d(np.arange(1, vocab.n_items + 1), mapping.new_rows)
        mapping = dataclasses.replace(mapping, items_imprinted=imprint_new_items(
            model, imprint_from, new_items, mapping.new_rows[1:], seed=seed))
    return model, mapping


RESUME_OVERRIDES = ("batch_size", "lr", "weight_decay", "patience", "keep", "weight_average")


def resume_config(run_config: dict, *, epochs: int | None = None, time_budget: float | None = None,
                  device: str | None = None, seed: int | None = None, overrides: dict | None = None) -> TrainConfig:
    """The old run's training settings for the update: its batch, patience, averaging and ``RESUME_LR_FACTOR``
    times its learning rate (unless ``overrides`` names them, from ``RESUME_OVERRIDES``), with a short budget
    (``time_budget``, ``epochs``, or by default ``RESUME_SHARE`` of its own epochs, at least
    ``MIN_RESUME_EPOCHS``, and no time limit). The history length is the model's and cannot change."""
    stored = dict(run_config.get("train") or {})
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    if given.get("max_len") is not None and given["max_len"] != stored.get("max_len", given["max_len"]):
        raise InputError(f"--max-len {given['max_len']} differs from the run's {stored['max_len']}; a resumed run "
                         "keeps its history length: leave --max-len out")
    unknown = sorted(set(given) - set(RESUME_OVERRIDES) - {"max_len"})
    if unknown:
        raise InputError(f"a resumed run cannot change {', '.join(unknown)}; it may change "
                         f"{', '.join(RESUME_OVERRIDES)}")
    given.pop("max_len", None)
    if "lr" not in given:
        given["lr"] = RESUME_LR_FACTOR * float(stored.get("lr", TrainConfig.lr))
    base = TrainConfig.from_dict({**TrainConfig.STORED_DEFAULTS, **stored, **given},
                                 where="the run's training options")
    if epochs is None and time_budget is None:
        old_epochs = int(run_config.get("epochs_trained") or 0)
        epochs = max(MIN_RESUME_EPOCHS, math.ceil(RESUME_SHARE * old_epochs - 1e-9))  # float noise never adds an epoch
    changes: dict = {"time_budget": time_budget, "device": device or "auto"}
    if epochs is not None:
        changes["epochs"] = epochs
    if seed is not None:
        changes["seed"] = seed
    return dataclasses.replace(base, **changes)


def resumed_from(config: dict) -> dict | None:
    """A run's warm-start record (``None`` for a run trained from scratch)."""
    record = config.get("resumed_from") or (config.get("data") or {}).get("resumed_from")
    return record if isinstance(record, dict) else None


def check_resume_paths(run_dir: str | Path, out_dir: str | Path) -> None:
    """Refuse an update that would write over the run it starts from (the old run must stay to compare with)."""
    if os.path.abspath(Path(run_dir).resolve()) == os.path.abspath(Path(out_dir).resolve()):
        raise InputError(f"--out '{out_dir}' is the run being resumed; give the updated run a new folder (the old "
                         "one stays, so the two can be compared)")


def check_same_family(run_config: dict, family: str | None, model_options: dict | None) -> None:
    """Refuse explicit model options that are not the run's: a warm start keeps the architecture."""
    if family is not None and family != run_config["family"]:
        raise InputError(f"--model {family} differs from the run's family {run_config['family']}; a resumed run "
                         "keeps its model: leave --model out, or train a new run without --resume")
    stored = run_config.get("model") or {}
    for name, value in (model_options or {}).items():
        if value is not None and name in stored and stored[name] != value:
            raise InputError(f"--{name.replace('_', '-')} {value} differs from the run's {stored[name]}; a resumed run "
                             "keeps its model options: leave it out, or train a new run without --resume")


def resume_training(run_dir: str | Path, data: SequenceData, out_dir: str | Path, *, data_info: dict | None = None,
                    epochs: int | None = None, time_budget: float | None = None, device: str = "auto",
                    seed: int | None = None, family: str | None = None, model_options: dict | None = None,
                    exclude_seen: bool | None = None, train_options: dict | None = None, new_items: str = "imprint",
                    progress_path: str | Path | None = None, should_stop: Callable[[], bool] | None = None,
                    on_event: Callable[[dict], None] | None = None) -> dict:
    """Update the run at ``run_dir`` on ``data`` (the grown log) and save it at ``out_dir``; returns the train JSON
    with ``resumed_from`` (the old run, its data fingerprint and last event time, the item and user counts kept and
    new). ``exclude_seen`` defaults to the old run's; ``train_options`` may change what :func:`resume_config` lets
    change; ``new_items`` picks how new items' vectors start ("imprint", the default, or "init": the family's own
    init alone; see :mod:`seqrec_core.training.imprint` for why the default). Refusals are one
    :class:`InputError` line, before anything is written: ``out_dir`` is the run, ``run_dir`` is not a run,
    ``family``/``model_options`` are not the run's, the log shares no item with it."""
    from seqrec_core.jobs.claim import claim_run_dir
    from seqrec_core.jobs.train import run_training_job
    from seqrec_core.runs import load_run, read_run_files

    if new_items not in NEW_ITEM_STARTS:
        raise InputError(f"new_items {new_items!r} is unknown; use one of {list(NEW_ITEM_STARTS)}")
    check_resume_paths(run_dir, out_dir)
    files = read_run_files(run_dir)
    check_same_family(files.config, family, model_options)
    map_vocab(files.vocab, data.vocab)  # refused before a folder is claimed or the model is read
    cfg = resume_config(files.config, epochs=epochs, time_budget=time_budget, device=device, seed=seed,
                        overrides=train_options)
    with claim_run_dir(out_dir, replace_run=False) as out:
        run = load_run(run_dir, files=files)
        old_data = files.config.get("data") or {}
        record = {"run": run.path.name, "path": str(run.path.resolve()), "fingerprint": old_data.get("fingerprint"),
                  "last_time": old_data.get("last_time"), "train_seconds": files.config.get("train_seconds")}
        box: dict = {}

        def build(text_progress: Callable[[int, int], None]) -> nn.Module:
            model, box["map"] = warm_start_model(run.model, run.vocab, data.vocab, seed=cfg.seed,
                                                 device=cfg.device, text_progress=text_progress,
                                                 imprint_from=data if new_items == "imprint" else None)
            record.update(box["map"].to_json())
            return model

        info = dict(data_info or {"name": "log", "fingerprint": data.fingerprint, "users": data.n_users,
                                  "items": data.vocab.n_items, "events": data.n_events, "source": None})
        info["resumed_from"] = record  # the dict build() fills in, stored in the run's data record
        exclude = bool(files.config.get("exclude_seen")) if exclude_seen is None else exclude_seen
        log.info("resuming %s on %d users x %d items for %s", run.path.name, data.n_users, data.vocab.n_items,
                 f"{cfg.time_budget:g} s" if cfg.time_budget else f"{cfg.epochs} epochs")
        options = {k: v for k, v in run.model.config.to_dict().items() if k not in ("n_items", "family")}
        return run_training_job(data, run.family, options, cfg, out, info, progress_path=progress_path,
                                should_stop=should_stop, exclude_seen=exclude, on_event=on_event, build=build)


__all__ = ["MIN_RESUME_EPOCHS", "NEW_ITEM_STARTS", "RESUME_LR_FACTOR", "RESUME_OVERRIDES", "RESUME_SHARE", "VocabMap",
           "check_resume_paths", "check_same_family", "item_indexed_keys", "map_vocab", "resume_config",
           "resume_training", "resumed_from", "warm_start_model"]
