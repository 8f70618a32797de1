"""The selection probe runs end to end on a tiny setting, so it cannot rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_probe_runs_and_writes_json(tmp_path):
    out = tmp_path / "probe.json"
    args = [
        "--dataset",
        "digits",
        "--trials",
        "1",
        "--components",
        "8",
        "--cold",
        "10",
        "--initial",
        "20",
        "--step",
        "10",
        "--cycles",
        "1",
        "--output",
        str(out),
    ]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "selection_probe.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    accuracy = json.loads(out.read_text())["accuracy"]
    assert set(accuracy) == {"cold 10", "seq 30"}
    assert set(accuracy["seq 30"]) >= {"random", "typiclust", "maxherding", "budget_aware"}
    assert "margin_diverse" not in accuracy["cold 10"]
