"""Progress of a background job as JSON lines, which the dashboard polls while the job runs.

One object per line, flushed at once, each stamped with the wall-clock ``time``; a reader that meets a line being
written skips it until it is complete. Training and analysis jobs append to the same kind of file.
"""
from __future__ import annotations

import json
import time
from pathlib import Path


class ProgressFile:
    """Appends one JSON object per line and flushes it, so a reader never waits for a buffer."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._fh = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def __call__(self, event: dict) -> None:
        if self._fh is not None:
            self._fh.write(json.dumps({**event, "time": round(time.time(), 3)}, default=str) + "\n")
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
