"""The quick mode of benchmarks/typiclust_scale.py, so that it cannot rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_mode_writes_the_figures(tmp_path):
    out = tmp_path / "scale.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "typiclust_scale.py"), "--quick"]
        + ["--output", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"wrote {out}" in result.stdout
    payload = json.loads(out.read_text())
    assert payload["machine"]["cpu_count"] >= 1 and payload["quick"] is True

    assert payload["pool_cases"]
    for case in payload["pool_cases"]:
        for method in ("exact", "exact_other_seed", "sampled", "random"):
            figures = case[method]
            assert figures["distinct"] == case["picks"]
            for key in (
                "typicality_in_exact_cluster",
                "typicality_percentile_in_exact_cluster",
                "typicality_in_pool",
                "coverage_mean_distance",
            ):
                assert figures[key] > 0, (case["case"], method, key)
        assert case["exact"]["wall_s"] > 0 and case["sampled"]["wall_s"] > 0
        assert 0 <= case["sampled"]["point_overlap"] <= 1
        assert 0 < case["sampled"]["cluster_overlap"] <= 1
        # typical picks: more typical than random ones
        assert case["sampled"]["typicality_in_pool"] > case["random"]["typicality_in_pool"], case[
            "case"
        ]

    (large,) = payload["large_cases"]
    assert large["dtype"] == "float16 memmap" and large["algorithm"] == "sampled"
    assert large["distinct"] == large["picks"]
    assert large["wall_s"] > 0
    assert large["peak_rss_bytes"] >= large["rss_after_imports_bytes"] > 0
    assert large["coverage_mean_distance"] > 0
