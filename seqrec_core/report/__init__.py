"""The review report: a run's stored analysis as one self-contained HTML file (opens offline, figures interactive).

- :mod:`.content`: what the report shows, read from the store (and, for the CLI, computed first when missing).
- :mod:`.sentences`: plain-language sentences from the numbers ("ranked first mostly because of X, ...").
- :mod:`.sections_run`, :mod:`.sections_explain`: the sections, drawn with the dashboard's ``viz`` figures.
- :mod:`.render`: the HTML (plotly.js inline once, escaped text, small tables).
- :mod:`.build`: :func:`build_review` and :func:`write_review` (atomic).
"""
from seqrec_core.report.build import Review, build_review, check_out_path, write_review

__all__ = ["Review", "build_review", "check_out_path", "write_review"]
