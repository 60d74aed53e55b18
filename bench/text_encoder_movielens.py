"""The real item-text encoder on ml-latest-small: quality with and without titles, cold items, encoding speed.

Item text is each movie's title and all its genres ("Toy Story (1995) (Adventure, Animation, Children, Comedy,
Fantasy)"), read by sentence-transformers all-MiniLM-L6-v2 as ``make text-model`` installs it (mean pooling, as
its folder declares). The library's loader keeps a movie's first genre only (one category per item, for colouring
maps), so this script puts the whole genre list from movies.csv back into the vocabulary before training.

Per family, two runs with the same seed and a fixed number of epochs (no time budget, so the numbers do not
depend on machine load): without titles and with them. For each: test NDCG@10 / HR@10 over all 610 users (full
ranking, seen items excluded: nobody rates a movie twice); and the cold items, movies the training split never
shows (they occur only as some user's validation or test target): the share of those cases where the movie
reaches its user's top 10 (validation and test cases together; the model's input is the user's history before
it), and HR@10 on the test cases whose target is cold. Separately, the seconds to encode all 9,742 movies.csv
texts with the real encoder from an empty cache (model load included), the issue's bar being <= 60 s on this CPU.
Prints one JSON document on stdout and a markdown table on stderr. It measures; it does not decide pass or fail.

    make text-model                                                  # once: the verified encoder folder
    python bench/text_encoder_movielens.py                  # sasrec + gru4rec, 20 epochs (~10-20 min alone)
    python bench/text_encoder_movielens.py --encode-only    # only the encoding time (all cores, as a train job)
    python bench/text_encoder_movielens.py --encode-only --encode-threads 1      # ... on one core
    python bench/text_encoder_movielens.py --family sasrec bert4rec --epochs 30 --threads 2
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from bench.train_speed import machine_info  # noqa: E402
from seqrec_core.data.dataset import DataSource, open_dataset  # noqa: E402
from seqrec_core.data.sequences import SequenceData  # noqa: E402
from seqrec_core.evaluation import evaluate  # noqa: E402
from seqrec_core.jobs import run_training_job  # noqa: E402
from seqrec_core.models.text_features import CACHE_ENV, declared_pooling, encode_item_texts  # noqa: E402
from seqrec_core.models.text_model_setup import default_dest  # noqa: E402
from seqrec_core.runs import load_run  # noqa: E402
from seqrec_core.training import TrainConfig  # noqa: E402

DEFAULT_THREADS = torch.get_num_threads()  # at start-up: all cores unless OMP_NUM_THREADS says less, as in a job
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ml-latest-small"
SETTINGS = ("plain", "titles")


def movie_texts(movies: pd.DataFrame) -> list[str]:
    """What the library's item_texts makes of a title and a genre list, for every row of movies.csv."""
    genres = movies["genres"].fillna("").replace("(no genres listed)", "").str.replace("|", ", ")
    return [f"{t} ({g})" if g else t for t, g in zip(movies["title"].fillna(""), genres, strict=True)]


def time_encoding(texts: list[str], encoder: str, cache: Path, batch_size: int, threads: int) -> dict:
    """Seconds to encode ``texts`` from an empty cache (loading the encoder included) with ``threads`` torch
    threads (0: torch's default, all cores, as a train job encodes), and the vectors' shape."""
    os.environ[CACHE_ENV] = str(cache / "timing")
    before = torch.get_num_threads()
    torch.set_num_threads(threads or DEFAULT_THREADS)
    try:
        started = time.perf_counter()
        vectors = encode_item_texts(texts, encoder, batch_size=batch_size)  # (n, 384)
        seconds = time.perf_counter() - started
        used = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    return {"texts": len(texts), "distinct": len(set(texts)), "seconds": round(seconds, 1), "dim": vectors.shape[1],
            "batch_size": batch_size, "torch_threads": used}


def with_all_genres(data: SequenceData, movies: pd.DataFrame) -> int:
    """Put each movie's whole genre list into the vocabulary (the loader kept the first genre); returns how many
    items got one."""
    genres = dict(zip(movies["movieId"].astype(str), movies["genres"].fillna(""), strict=True))
    full = {item: genres[item] for item in data.vocab.item_ids
            if genres.get(item) and genres[item] != "(no genres listed)"}
    data.vocab.item_categories.update(full)
    return len(full)


def cold_items(data: SequenceData) -> np.ndarray:
    """(n_items + 1,) bool: items no user's training sequence holds (they are only validation / test targets)."""
    trained = np.zeros(data.vocab.n_items + 1, dtype=bool)
    for u in range(data.n_users):
        trained[data.train_sequence(u)] = True
    cold = ~trained
    cold[0] = False  # padding
    return cold


def measure(data: SequenceData, family: str, encoder: str | None, out: Path, epochs: int, seed: int,
            cold: np.ndarray) -> dict:
    """Train one run (the library's defaults for this log, ``epochs`` epochs, no time budget) and score it."""
    options = {"text_encoder": encoder} if encoder else {}
    cfg = TrainConfig(epochs=epochs, time_budget=None, device="cpu", seed=seed)
    started = time.time()
    summary = run_training_job(data, family, options, cfg, out, {"name": "ml-latest-small"})
    wall = time.time() - started
    scorer = load_run(out).scorer(device=torch.device("cpu"))
    test = evaluate(scorer, data, "test", exclude_seen=True)
    val = evaluate(scorer, data, "val", exclude_seen=True)
    cold_test = cold[data.split("test").targets]  # (U,) the test target is a cold item
    cold_val = cold[data.split("val").targets]
    cold_ranks = np.concatenate([val.ranks[cold_val], test.ranks[cold_test]])
    return {"test_NDCG@10": round(test.metrics["NDCG@10"], 4), "test_HR@10": round(test.metrics["HR@10"], 4),
            "cold_cases": int(len(cold_ranks)), "cold_in_top10": round(float(np.mean(cold_ranks <= 10)), 3),
            "cold_median_rank": float(np.median(cold_ranks)),
            "cold_test_cases": int(cold_test.sum()),
            "cold_test_HR@10": round(float(np.mean(test.ranks[cold_test] <= 10)), 3),
            "epochs": summary["epochs"], "best_epoch": summary["best_epoch"],
            "train_seconds": summary["train_seconds"], "job_wall_seconds": round(wall, 1)}


def table(runs: dict, epochs: int, seed: int) -> str:
    lines = [f"\nml-latest-small, all-MiniLM-L6-v2 titles + genres ({epochs} epochs, seed {seed}, seen excluded)\n",
             "| family | titles | test NDCG@10 | test HR@10 | cold items in their user's top 10 (val + test) | "
             "cold median rank | HR@10, cold test targets |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for family, by_setting in runs.items():
        for setting, r in by_setting.items():
            lines.append(f"| {family} | {'with' if setting == 'titles' else 'without'} | {r['test_NDCG@10']:.4f} | "
                         f"{r['test_HR@10']:.4f} | {r['cold_in_top10']:.3f} ({r['cold_cases']} cases) | "
                         f"{r['cold_median_rank']:g} | {r['cold_test_HR@10']:.3f} ({r['cold_test_cases']}) |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=str(DEFAULT_DATA), help="folder with ratings.csv and movies.csv")
    ap.add_argument("--encoder", default=None, help="encoder folder (default: where `make text-model` puts it)")
    ap.add_argument("--family", nargs="+", default=["sasrec", "gru4rec"])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for training (1: steady numbers on a "
                    "shared machine)")
    ap.add_argument("--encode-threads", type=int, default=0,
                    help="torch threads for the encoding time (default 0: torch's default, as a train job encodes)")
    ap.add_argument("--batch-size", type=int, default=64, help="texts per encoder batch")
    ap.add_argument("--encode-only", action="store_true", help="only time the encoding of all movies.csv texts")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    encoder = str(Path(args.encoder) if args.encoder else default_dest())
    if not (Path(encoder) / "model.safetensors").is_file():
        raise SystemExit(f"no encoder at {encoder}: run `make text-model` first (or pass --encoder)")
    data_dir = Path(args.data_dir)
    movies = pd.read_csv(data_dir / "movies.csv")

    started = time.time()
    result: dict = {"bench": "text_encoder_movielens", "machine": machine_info(torch.device("cpu")),
                    "encoder": encoder, "pooling": list(declared_pooling(encoder)), "epochs": args.epochs,
                    "seed": args.seed}
    with tempfile.TemporaryDirectory(prefix="seqrec-text-ml-") as tmp:
        root = Path(tmp)
        result["encoding"] = time_encoding(movie_texts(movies), encoder, root, args.batch_size, args.encode_threads)
        print(f"encoded {result['encoding']['texts']:,} texts in {result['encoding']['seconds']} s",
              file=sys.stderr, flush=True)
        if not args.encode_only:
            os.environ[CACHE_ENV] = str(root / "cache")  # the training runs share one encoding of the catalogue
            ds = open_dataset(DataSource(path=str(data_dir / "ratings.csv"), format="auto"))
            data = ds.sequences
            result["items_with_genres"] = with_all_genres(data, movies)
            cold = cold_items(data)
            result["data"] = {"users": data.n_users, "items": data.vocab.n_items, "events": data.n_events,
                              "cold_items": int(cold.sum())}
            runs: dict = {}
            for family in args.family:
                runs[family] = {}
                for setting in SETTINGS:
                    runs[family][setting] = measure(data, family, encoder if setting == "titles" else None,
                                                    root / f"{family}_{setting}", args.epochs, args.seed, cold)
                    print(f"{family} {setting}: {runs[family][setting]}", file=sys.stderr, flush=True)
            result["runs"] = runs
    result["wall_seconds"] = round(time.time() - started, 1)
    print(json.dumps(result, indent=2))
    if "runs" in result:
        print(table(result["runs"], args.epochs, args.seed), file=sys.stderr)


if __name__ == "__main__":
    main()
