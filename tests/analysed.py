"""Store a test run's analyses, as the analysis job after training does (pages read what it stores). Importable
from every test folder because pytest puts ``tests/`` (the folder of the root conftest) on sys.path."""
from __future__ import annotations

from pathlib import Path


def analyse(run_dir: Path, dataset, sample: int = 4, parts: tuple[str, ...] = ("all",)) -> Path:  # noqa: ANN001
    """Store a run's analyses as the analysis job does after training (pages read them; a few seconds for a tiny
    run, plus numba's one-time UMAP compile in the test process)."""
    from seqrec_core.analysis.job import run_analysis
    from seqrec_core.jobs.spec import AnalysisRequest, AnalyzeSpec

    run_analysis(AnalyzeSpec(run=str(run_dir), request=AnalysisRequest(parts=parts, sample=sample), device="cpu"),
                 dataset=dataset)
    return run_dir
