"""The learner benchmark's quick mode, so that the script cannot rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path, *args):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "learner.py"),
            "--quick",
            "--threads",
            "1",
            "--output",
            str(tmp_path / "learner.json"),
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )


def test_learner_benchmark_quick(tmp_path):
    result = _run(tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "trained now" in result.stdout and "shared by every seed" in result.stdout
    payload = json.loads((tmp_path / "learner.json").read_text())
    rows = {(e["row"], e["budget"]) for e in payload["entries"]}
    assert rows == {
        (r, b) for r in ("supervised_old", "supervised_new", "probe", "finetune") for b in (50, 100)
    }
    by = {(e["row"], e["budget"]): e for e in payload["entries"]}
    # the old schedule starves the small set; the new one pads it to the minimum
    assert by["supervised_old", 50]["steps"] == 2 * 2
    assert by["supervised_new", 50]["steps"] == by["supervised_new", 100]["steps"] == 2 * 4
    assert all(0.0 <= e["accuracy"] <= 1.0 for e in payload["entries"])
    assert [t["epoch"] for t in payload["epoch_table"]] == [1, 1, 2, 2]
    assert payload["pretraining"]["pool_images"] == 256
    assert len(list((tmp_path / "learner-cache").glob("encoder-*.pt"))) == 3
    # a second invocation reuses the cached pretraining and skips finished entries
    again = _run(tmp_path, "--resume", "--rows", "probe,finetune")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "loaded from the cache" in again.stdout
    assert "seed 0:" not in again.stdout


def test_convergence_study_quick(tmp_path):
    result = _run(tmp_path, "--study", "convergence", "--inits", "scratch,pretrained")
    assert result.returncode == 0, result.stderr[-3000:]
    payload = json.loads((tmp_path / "learner.json").read_text())
    keys = {(e["init"], e["budget"], e["samples"], e["seed"]) for e in payload["entries"]}
    assert keys == {
        (i, b, c, s)
        for i in ("scratch", "pretrained")
        for b in (50, 100)
        for c in (512, 1024)
        for s in (0,)
    }
    # each fit saw at least the compute asked for, and the table has every point
    assert all(e["seen"] >= e["samples"] for e in payload["entries"])
    row = next(r for r in payload["table"] if r["budget"] == 100 and "scratch" in r["setting"])
    assert set(row["accuracy"]) == {"512", "1024"}
    assert row["accuracy"]["512"]["n_seeds"] == 1
    # another setting fills the same file; finished entries are skipped
    again = _run(tmp_path, "--study", "convergence", "--resume")
    assert "seed 0:" not in again.stdout
    other = _run(tmp_path, "--study", "convergence", "--augment", "none", "--resume")
    assert other.returncode == 0, other.stderr[-3000:]
    payload = json.loads((tmp_path / "learner.json").read_text())
    assert {e["augment"] for e in payload["entries"]} == {"weak", "none"}


def test_throughput_study_quick(tmp_path):
    result = _run(tmp_path, "--study", "throughput", "--repeats", "1", "--threads", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    # every (precision, threads) cell against the plain loop, relative to fp32 on one thread
    for cell in (
        "fp32, 1 thread(s)",
        "bf16, 1 thread(s)",
        "fp32, 2 thread(s)",
        "bf16, 2 thread(s)",
    ):
        assert cell in result.stdout
    assert "ratio_median" in result.stdout and "fit_over_fp32_1_thread" in result.stdout


def test_converged_at_needs_every_later_doubling_flat(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from learner import converged_at

    # the batch-32 study at 200 labels: 25k -> 50k is flat (+0.19) but 50k -> 100k
    # adds 0.63, so it converges at 100k (+0.07 to 200k), not at 25k
    assert converged_at({25: 0.7467, 50: 0.7486, 100: 0.7549, 200: 0.7556}) == 100
    assert converged_at({50: 0.80, 100: 0.81, 200: 0.8101}) == 100
    # a drop counts as flat; a last step still rising leaves it open
    assert converged_at({100: 0.84, 200: 0.83}) == 100
    assert converged_at({100: 0.80, 200: 0.801, 400: 0.81}) is None
