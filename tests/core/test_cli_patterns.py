"""`python -m seqrec_core patterns`: the DESIGN.md JSON on stdout, exit 2 with one line for bad input."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seqrec_core", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


def assert_clean_refusal(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from seqrec_core.data.synthetic import make_demo_events

    events, _truth = make_demo_events(n_users=300, seed=2)
    path = tmp_path_factory.mktemp("patterns") / "demo.parquet"
    events.to_parquet(path, index=False)
    return path


def test_patterns_prints_the_contract(demo_file):
    proc = cli("patterns", "--data", str(demo_file), "--tz", "Europe/Berlin")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert {"periods", "burstiness", "memory", "per_user", "bursts"} <= set(out)
    assert out["timezone"] == "Europe/Berlin"
    assert any(p["significant"] and abs(p["period_hours"] - 24) <= 0.5 for p in out["periods"])
    assert -1 <= out["burstiness"] <= 1
    assert len(out["per_user"]) == 300
    row = out["per_user"][0]
    assert set(row) == {"user", "events", "burstiness", "memory", "dominant_period_hours"}
    assert isinstance(row["events"], int)
    for burst in out["bursts"]:
        assert datetime.fromisoformat(burst["start"]) < datetime.fromisoformat(burst["end"])
        assert burst["level"] >= 1


def test_patterns_refuses_bad_input_with_one_line(demo_file, tmp_path):
    assert_clean_refusal(cli("patterns", "--data", str(demo_file), "--tz", "Mars/Olympus"), "Mars/Olympus")
    seq = tmp_path / "order_only.txt"
    seq.write_text("\n".join(f"{u} " + " ".join(str(1 + (u + k) % 9) for k in range(6)) for u in range(20)) + "\n")
    assert_clean_refusal(cli("patterns", "--data", str(seq), "--format", "seqtxt"), "no timestamps")
    assert_clean_refusal(cli("patterns"))  # --data missing
