"""The one exception type for bad input from a person (a file, a column, an option).

Its message is a single line that names the file, row or column and says how to fix it. The CLI turns it
into exit status 2; the dashboard shows it with ``st.error``. Anything else escaping is a bug.
"""
from __future__ import annotations


class InputError(ValueError):
    """Bad input; ``str(err)`` is one line naming where the problem is and how to fix it."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
