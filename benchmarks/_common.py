"""Helpers shared by the benchmark scripts: machine description and JSON output."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))


def machine_info() -> dict:
    """Where a figure came from: date, platform, CPU count, library versions, GPU."""
    import numpy
    import torch

    info = {
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def write_json(name: str, payload: dict) -> Path:
    """Write ``benchmarks/results/<name>`` and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def run_and_report(
    config,
    name: str,
    output: str | None,
    *,
    resume: bool,
    quick: bool,
    targets=None,
    cache_dir=None,
    **extra,
) -> dict:
    """Run an experiment, print its table, write ``<name>.json`` beside the run folder.

    ``targets(summary) -> dict``, when given, prints and returns the checks
    of the benchmark's targets; they are stored under ``"targets"``.
    """
    import time

    from moby_al_plugin.experiments import (
        class_histograms,
        format_table,
        run_experiment,
        summarize,
    )

    output = str(output) if output else str(RESULTS / name)
    started = time.perf_counter()
    records = run_experiment(
        config,
        output,
        resume=resume,
        progress=False if quick else None,
        log=None if quick else print,
        cache_dir=cache_dir,
    )
    summary = summarize(records)
    print(format_table(summary))
    payload = {
        "machine": machine_info(),
        **extra,
        "config": config.to_dict(),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "summary": summary,
        "class_histograms": class_histograms(records),
    }
    if targets is not None:
        payload["targets"] = targets(summary)
    if output == str(RESULTS / name):
        path = write_json(f"{name}.json", payload)
    else:  # beside the run folder it summarises, never over a committed summary
        path = Path(output).parent / f"{Path(output).name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path} (runs in {output})")
    return payload
