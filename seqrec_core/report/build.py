"""The review report: one self-contained HTML file built from a run's stored analysis (the CLI's ``report`` and
the dashboard's "Download review (HTML)" button produce the same file)."""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from seqrec_core.errors import InputError
from seqrec_core.report.content import Progress, ReviewContent, gather_review
from seqrec_core.report.render import Canvas, page
from seqrec_core.report.sections_explain import faithfulness_section, longrange_section, users_section
from seqrec_core.report.sections_run import data_section, header, metrics_section, model_section, patterns_section

if TYPE_CHECKING:
    from seqrec_core.data.dataset import Dataset
    from seqrec_core.patterns.report import PatternReport

SUFFIXES = (".html", ".htm")


@dataclass
class Review:
    """A built report: the HTML document, how many figures it draws, which users it explains, and which parts
    were left out (each with the reason and the command that fills it)."""

    html: str
    figures: int
    users: list[str]
    missing: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def bytes(self) -> int:
        return len(self.html.encode("utf-8"))


def build_review(run_dir: str | Path, dataset: Dataset, users: list[str] | None = None, *,
                 compute_missing: bool = True, device: str = "auto", patterns: PatternReport | None = None,
                 progress: Progress | None = None) -> Review:
    """The review report of ``run_dir`` on ``dataset`` (the data it was trained on).

    ``users``: the users to explain (default: the pages' default user and up to 4 more the run ranks well,
    preferring users whose explanations are stored). ``compute_missing``: first store what is missing with the
    analysis job (the CLI; fresh units are reused, per-user kinds add only the chosen users); False uses only what
    is stored and says in the report which sections are missing and how to compute them (the dashboard's button:
    reading and drawing take seconds). ``patterns``: the log's :class:`PatternReport` when the caller has it
    (the Patterns page's cache), else computed from the events (about 2 s on the demo log). ``progress(text,
    share)`` hears each step."""
    from plotly.offline import get_plotlyjs

    started = time.perf_counter()
    content = gather_review(run_dir, dataset, users, compute_missing=compute_missing, device=device,
                            patterns=patterns, progress=progress)
    if progress is not None:
        progress("Drawing the figures…", 0.92)
    canvas = Canvas()
    sections = [data_section(content, canvas), patterns_section(content, canvas), model_section(content, canvas),
                metrics_section(content, canvas), longrange_section(content, canvas),
                faithfulness_section(content, canvas), users_section(content, canvas)]
    document = page(f"Review: {content.run_name}", header(content), sections, get_plotlyjs())
    if progress is not None:
        progress("Done", 1.0)
    return Review(html=document, figures=canvas.count, users=content.user_ids, missing=missing_parts(content),
                  seconds=round(time.perf_counter() - started, 3))


def missing_parts(content: ReviewContent) -> list[str]:
    """Kinds the report could not show though they apply to the run (not stored, or stored for other weights)."""
    return [k for k, p in content.parts.items() if p.unit is None and not p.skipped]


def check_out_path(path: str | Path) -> Path:
    """Where a report may be written: an .html file in an existing, writable folder (checked before any work)."""
    out = Path(path)
    if out.suffix.lower() not in SUFFIXES:
        raise InputError(f"--out '{out}' must end in .html or .htm (the report is one HTML file)")
    folder = out.parent
    if not folder.is_dir():
        raise InputError(f"--out '{out}': the folder '{folder}' does not exist; create it first")
    if out.is_dir():
        raise InputError(f"--out '{out}' is a folder; name the HTML file to write")
    if not os.access(folder, os.W_OK | os.X_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise InputError(f"--out '{out}': cannot write there (permission denied); pick another place")
    return out


def write_review(review: Review, path: str | Path) -> Path:
    """Write the report atomically (a temp file beside the target, then one rename): a reader never sees half."""
    out = check_out_path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(review.html)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"--out '{out}': the report could not be written ({err.strerror or err})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
