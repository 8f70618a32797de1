"""Experiment results on disk: atomic writes, JSON lines, CSV and summaries.

Every file is written to a temporary name in the same folder and then renamed
over the old one (``os.replace`` is atomic on POSIX), so a crash or a kill
leaves either the old file or the new one, never half of either.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pickle
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import auc

from .._atomic import atomic_write
from ..exceptions import DataNotFoundError
from .config import ExperimentError

__all__ = [
    "RESULT_FIELDS",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_pickle",
    "write_records",
    "read_records",
    "summarize",
    "learning_curve_area",
    "labels_to_reach",
    "median_stop",
    "class_histograms",
    "format_table",
]

# the columns of results.csv, in order (``queried`` stays in the JSON lines)
RESULT_FIELDS = (
    "strategy",
    "trial",
    "seed",
    "cycle",
    "n_labeled",
    "accuracy",
    "train_seconds",
    "query_seconds",
    "stop_kappa",
    "stop",
)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename)."""
    atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_pickle(path: str | os.PathLike, obj: Any) -> None:
    """Pickle ``obj`` to ``path`` atomically."""
    atomic_write_bytes(path, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def write_records(folder: str | os.PathLike, records: Iterable[dict]) -> None:
    """Write ``results.jsonl`` (every field) and ``results.csv`` (scalar fields)."""
    records = sorted(records, key=lambda r: (r["strategy"], r["trial"], r["cycle"]))
    folder = Path(folder)
    lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    atomic_write_text(folder / "results.jsonl", lines)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RESULT_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(records)
    atomic_write_text(folder / "results.csv", buffer.getvalue())


def read_records(folder: str | os.PathLike) -> list[dict]:
    """Read ``results.jsonl`` from ``folder``.

    Raises
    ------
    DataNotFoundError
        If the folder holds no ``results.jsonl`` (also a ``FileNotFoundError``).
    ExperimentError
        If a line is not valid JSON.
    """
    path = Path(folder) / "results.jsonl"
    if not path.is_file():
        raise DataNotFoundError(f"No results in {folder}: {path.name} is missing.")
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ExperimentError(f"{path}, line {number}, is not valid JSON: {exc}") from exc
    return records


def learning_curve_area(n_labeled: Iterable[float], accuracy: Iterable[float]) -> float:
    """Area under an accuracy curve, normalised by its label range (a mean accuracy).

    A single point returns its accuracy.
    """
    x = np.asarray(list(n_labeled), dtype=float)
    y = np.asarray(list(accuracy), dtype=float)
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if x.size < 2 or x[-1] == x[0]:
        return float(y.mean())
    return float(auc(x, y) / (x[-1] - x[0]))


def _trial_key(record: dict) -> tuple:
    """One trial: runs of other seeds joined together each number their trials from 0."""
    return record["trial"], record.get("seed")


def summarize(records: Iterable[dict]) -> dict[str, dict]:
    """Mean and spread of accuracy per strategy and labelled count.

    Returns
    -------
    dict
        ``{strategy: {"n_labeled": [...], "mean": [...], "std": [...],
        "trials": [...], "auc_mean": float, "auc_std": float,
        "train_seconds": float, "query_seconds": float, "stop_at": [...]}}``;
        ``stop_at`` holds, per trial that recorded the stopping rule, the
        labels at which it first said stop (None: never), and is empty when
        no trial recorded it; std is the
        population standard deviation over trials (0 for one trial); AUC is
        :func:`learning_curve_area` of each trial's curve, a trial being a
        (trial, seed) pair, so runs of other seeds joined together stay apart.
    """
    by_strategy: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        by_strategy[record["strategy"]].append(record)
    summary = {}
    for strategy, rows in by_strategy.items():
        per_count: dict[int, list[float]] = defaultdict(list)
        per_trial: dict[tuple, list[tuple[int, float]]] = defaultdict(list)
        for row in rows:
            per_count[row["n_labeled"]].append(row["accuracy"])
            per_trial[_trial_key(row)].append((row["n_labeled"], row["accuracy"]))
        counts = sorted(per_count)
        stop_at = _stop_points(rows)
        aucs = [learning_curve_area(*zip(*sorted(curve))) for curve in per_trial.values()]
        summary[strategy] = {
            "n_labeled": counts,
            "mean": [float(np.mean(per_count[c])) for c in counts],
            "std": [float(np.std(per_count[c])) for c in counts],
            "trials": [len(per_count[c]) for c in counts],
            "auc_mean": float(np.mean(aucs)),
            "auc_std": float(np.std(aucs)),
            "train_seconds": float(np.mean([r["train_seconds"] for r in rows])),
            "query_seconds": float(
                np.mean([r["query_seconds"] for r in rows if r["cycle"] > 0] or [0.0])
            ),
            "stop_at": stop_at,
        }
    return summary


def _stop_points(rows: list[dict]) -> list[int | None]:
    """Per trial, the labels at which the stopping rule first fired (None: never)."""
    per_trial: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        if "stop" in row:
            per_trial[_trial_key(row)].append(row)
    points: list[int | None] = []
    for key in sorted(per_trial, key=str):
        fired = [
            r["n_labeled"] for r in sorted(per_trial[key], key=lambda r: r["cycle"]) if r["stop"]
        ]
        points.append(int(fired[0]) if fired else None)
    return points


def median_stop(stop_at: list[int | None]) -> float | None:
    """The median labels at which the trials stopped, None when fewer than half did.

    A trial that never stopped counts as later than every one that did.
    """
    if not stop_at:
        return None
    ordered = sorted(stop_at, key=lambda x: (x is None, x or 0))
    middle = ordered[(len(ordered) - 1) // 2 : len(ordered) // 2 + 1]
    if any(x is None for x in middle):
        return None
    return float(np.mean(middle))


def labels_to_reach(n_labeled: Iterable[float], accuracy: Iterable[float], target: float):
    """The labels at which a learning curve first reaches ``target`` accuracy.

    The curve is interpolated linearly between its points: the figure a
    user asks for ("how many labels for the accuracy random picks reach
    with N?"). None when the curve never gets there.

    >>> labels_to_reach([200, 400], [0.70, 0.80], 0.75)
    300.0
    """
    x = np.asarray(list(n_labeled), dtype=float)
    y = np.asarray(list(accuracy), dtype=float)
    reached = np.flatnonzero(y >= target)
    if reached.size == 0:
        return None
    first = int(reached[0])
    if first == 0:
        return float(x[0])
    x0, x1, y0, y1 = x[first - 1], x[first], y[first - 1], y[first]
    return float(x0 + (target - y0) * (x1 - x0) / (y1 - y0))


def class_histograms(records: Iterable[dict]) -> dict[str, dict]:
    """Class counts of every strategy's picks, summed over cycles, averaged over trials.

    Returns
    -------
    dict
        ``{strategy: {"classes": [...], "initial": [...], "queried": [...]}}``:
        mean counts per trial of the initial set (cycle 0) and of all later
        picks, in ``classes`` order. Records written before the class counts
        were kept are skipped.
    """
    sums: dict[str, dict] = {}
    for record in records:
        if "queried_classes" not in record:
            continue
        entry = sums.setdefault(
            record["strategy"],
            {"classes": record["classes"], "initial": {}, "queried": {}},
        )
        part = entry["initial" if record["cycle"] == 0 else "queried"]
        counts = part.setdefault(_trial_key(record), np.zeros(len(record["classes"])))
        counts += np.asarray(record["queried_classes"], dtype=float)
    return {
        strategy: {
            "classes": entry["classes"],
            **{
                part: np.mean(list(entry[part].values()), axis=0).round(1).tolist()
                if entry[part]
                else [0.0] * len(entry["classes"])
                for part in ("initial", "queried")
            },
        }
        for strategy, entry in sums.items()
    }


def _stop_cell(stop_at: list[int | None]) -> str:
    if not stop_at:
        return "-"
    median = median_stop(stop_at)
    stopped = sum(x is not None for x in stop_at)
    text = "never" if median is None else f"{median:.0f}"
    return text + (f" ({stopped}/{len(stop_at)})" if len(stop_at) > 1 else "")


def format_table(summary: dict[str, dict], markdown: bool = False) -> str:
    """A table with one row per strategy, accuracy (%) per labelled count.

    ``markdown=True`` gives a Markdown table (for a README or a report)
    instead of aligned plain text.
    """
    if not summary:
        return "(no results)"
    counts = sorted({c for s in summary.values() for c in s["n_labeled"]})
    stopping = any(s.get("stop_at") for s in summary.values())
    header = ["strategy"] + [str(c) for c in counts] + ["AUC", "train s", "query s"]
    header += ["stops at"] if stopping else []
    rows = []
    for strategy, stats in summary.items():
        cells = {c: (m, s) for c, m, s in zip(stats["n_labeled"], stats["mean"], stats["std"])}
        row = [strategy]
        for c in counts:
            if c in cells:
                mean, std = cells[c]
                row.append(f"{100 * mean:.1f}" + (f"±{100 * std:.1f}" if std > 0 else ""))
            else:
                row.append("-")
        row += [
            f"{100 * stats['auc_mean']:.1f}",
            f"{stats['train_seconds']:.1f}",
            f"{stats['query_seconds']:.2f}",
        ]
        if stopping:
            row.append(_stop_cell(stats.get("stop_at", [])))
        rows.append(row)
    footnote = "accuracy (%) by number of labelled images; mean±std over trials"
    if stopping:
        footnote += (
            "; stops at: labels at which the stabilizing-predictions rule said stop "
            "(median over trials; 'never' within the run)"
        )
    if markdown:
        lines = ["| " + " | ".join(cells) + " |" for cells in [header] + rows]
        lines.insert(1, "|" + " --- |" * len(header))
        return "\n".join(lines + ["", footnote])
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = [
        "  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(header, widths)))
    ]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append(
            "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
        )
    lines.append(footnote)
    return "\n".join(lines)
