"""Item titles and genres for a behaviour log: MovieLens ``movies.csv`` / ``movies.dat`` / ``u.item``, any table
with an item column plus a title and/or category column, and the titles file lying beside a ratings file.

Split from ``loaders`` because describing items is a different job from reading events. Tables are parsed with
the CSV/TSV reader the caller passes in (``read_table``, in practice ``loaders.read_delimited``, so titles files
get the same delimiter sniffing, header detection and line-numbered errors as logs): ``loaders`` attaches titles
while loading, so importing it from here would be a circular import. ``loaders.read_item_metadata`` and
``loaders.attach_item_metadata`` are these functions with that reader bound.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from seqrec_core.data.containers import _unwrap, decode_text
from seqrec_core.data.limits import check_file_size
from seqrec_core.data.schema import RowRef, find_by_name, first_label, short, to_id_strings, to_text
from seqrec_core.errors import InputError

log = logging.getLogger(__name__)

# read_table(name, text, fmt="csv", *, header=None, names=None, delim=None) -> (all-text frame, file line of each row)
TableReader = Callable[..., tuple[pd.DataFrame, RowRef]]
# the titles file MovieLens ships beside each kind of ratings file
ML_SIBLINGS = {"ratings.csv": ("movies.csv",), "ratings.dat": ("movies.dat",), "u.data": ("u.item",)}

_ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                  "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
                  "War", "Western")


def read_item_metadata(name: str, data: bytes, *, read_table: TableReader) -> pd.DataFrame:
    """``item_id`` plus ``item_title`` and/or ``item_category`` (the first genre of a pipe list)."""
    name, data, _ = _unwrap(name, data, {})
    text = decode_text(name, data)
    first = next((ln for ln in text.split("\n") if ln.strip()), "")
    if not first:
        raise InputError(f"{name} is empty; choose the file with item titles")
    if "::" in first:  # movies.dat: MovieID::Title::Genres
        frame, ref = read_table(name, text.replace("::", "\t"), header=False, delim="\t",
                                names=("item_id", "item_title", "item_category"))
    elif first.count("|") == 4 + len(_ML100K_GENRES):  # u.item: id|title|date|video date|url|19 genre flags
        frame, ref = read_table(name, text, header=False, delim="|")
        flags = frame.iloc[:, 5:].apply(pd.to_numeric, errors="coerce").fillna(0).to_numpy() > 0
        genre = np.where(flags.any(axis=1), np.asarray(_ML100K_GENRES, dtype=object)[flags.argmax(axis=1)], None)
        frame = pd.DataFrame({"item_id": frame.iloc[:, 0], "item_title": frame.iloc[:, 1], "item_category": genre})
    else:  # any table with an item column and a title and/or category column (MovieLens movies.csv)
        frame, ref = read_table(name, text, "csv")
        cols = [str(c) for c in frame.columns]
        picks = {"item_id": find_by_name(cols, "item") or cols[0], "item_title": find_by_name(cols, "title"),
                 "item_category": find_by_name(cols, "category")}
        if picks["item_title"] is None and picks["item_category"] is None:
            raise InputError(f"{name} has no title or category column "
                             f"(columns found: {', '.join(map(short, cols[:10]))}); "
                             f"item metadata needs an item id column plus 'title' and/or 'category'/'genres'")
        frame = pd.DataFrame({k: frame[v] for k, v in picks.items() if v is not None})
    out = pd.DataFrame({"item_id": to_id_strings(frame["item_id"], ref, "item id", "item")})
    if "item_title" in frame:
        out["item_title"] = to_text(frame["item_title"])
    if "item_category" in frame:
        out["item_category"] = first_label(to_text(frame["item_category"]))
    return out.drop_duplicates("item_id").reset_index(drop=True)


def attach_item_metadata(events: pd.DataFrame, meta_name: str, meta_data: bytes, source: str, *,
                         read_table: TableReader) -> pd.DataFrame:
    """Add titles/categories the events lack; refuses a titles file that matches none of the log's items."""
    meta = read_item_metadata(meta_name, meta_data, read_table=read_table)
    add = [c for c in ("item_title", "item_category") if c in meta.columns and c not in events.columns]
    if not add:
        return events
    if not events["item_id"].isin(meta["item_id"]).any():
        raise InputError(f"none of the item ids in {source} (e.g. '{events['item_id'].iloc[0]}') appear in "
                         f"{meta_name} (e.g. '{meta['item_id'].iloc[0]}'); is it the titles file for this log?")
    log.info("%s: titles/categories from %s", source, meta_name)
    merged = events.merge(meta[["item_id", *add]], on="item_id", how="left", sort=False)
    merged.attrs = dict(events.attrs)  # what loading noted (canonical.LOAD_NOTES) still reaches the report
    return merged


def titles_file_beside(path: Path) -> tuple[str, bytes] | None:
    """The titles file next to a MovieLens ratings file (``movies.csv`` beside ``ratings.csv``, ...; any of them
    beside a ratings file with another name), as (file name, bytes); None when there is none."""
    siblings = ML_SIBLINGS.get(path.name.lower(), ("movies.csv", "movies.dat", "u.item"))
    side = next((path.parent / s for s in siblings if (path.parent / s).is_file()), None)
    if side is None:
        return None
    check_file_size(side)  # opened by path like the log itself: the same cap
    try:
        data = side.read_bytes()
    except OSError as err:
        raise InputError(f"cannot read '{side}' beside {path.name} ({err.strerror}); fix its permissions or "
                         f"move it away") from None
    log.info("%s: adding item titles and genres from %s", path.name, side.name)
    return side.name, data
