"""Speed and memory of ``k_center_greedy`` against the reference k-Center-Greedy.

The reference is a re-implementation of the algorithm the MoBYv2AL authors
run (Google's active-learning ``kCenterGreedy``): the pool is one feature
matrix whose rows are the unlabelled candidates followed by the labelled set;
``sklearn.metrics.pairwise_distances`` builds the dense ``N x |L|`` float64
distance matrix to the labelled rows, its row minimum starts the greedy, and
each pick calls ``pairwise_distances(features, features[[p]])`` and
``np.minimum`` again.

For every pool case the script, in one process:

1. times the reference (float64) and ours (float32) ``--repeats`` times and
   reports medians and the speed-up;
2. checks our picks step by step against a float64 greedy that follows *our*
   picks: at each step our pick must be the float64 maximum ("equal") or
   within 1e-5 relative of it ("near-tie", listed with step and gap);
3. times the torch-CPU variant of our loop once, for the record.

The large case (ours only) reports time and the peak extra memory, measured
with ``tracemalloc`` (numpy reports its buffers to it) and as the growth of
the process's maximum resident set size, next to the feature-matrix size.
Large cases run first so that the RSS high-water mark is not already set by
the pool cases.

Usage (from the repository root)::

    python benchmarks/kcenter_speed.py            # full run, a few minutes
    python benchmarks/kcenter_speed.py --quick    # a few seconds
    python benchmarks/kcenter_speed.py --sizes 11k,1m --repeats 5

Results are printed as a table and written as JSON (default
``benchmarks/results/kcenter_speed.json``; ``--quick`` writes
``kcenter_speed_quick.json`` so it never overwrites a full run).  The exit
status is 1 if any pick falls outside the tolerance.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import functools
import json
import os
import platform
import resource
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
try:
    import moby_al_plugin  # noqa: F401
except ImportError:  # not installed: run from a checkout
    sys.path.insert(0, str(ROOT))

import sklearn  # noqa: E402
import torch  # noqa: E402
from sklearn.metrics import pairwise_distances  # noqa: E402

from moby_al_plugin.selection import kcenter  # noqa: E402
from moby_al_plugin.selection.kcenter import k_center_greedy  # noqa: E402

RTOL = 1e-5


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # "pool": reference vs ours; "large": ours only, with memory
    n_candidates: int
    n_labelled: int
    dim: int
    picks: int


PRESETS = {
    "11k": Case("11k", "pool", 10_000, 1_000, 512, 1_000),
    "51k": Case("51k", "pool", 50_000, 1_000, 512, 1_000),
    "1m": Case("1m", "large", 1_000_000, 1_000, 128, 1_000),
    "quick-pool": Case("quick-pool", "pool", 2_000, 200, 64, 100),
    "quick-large": Case("quick-large", "large", 100_000, 100, 16, 100),
}
FULL = ["11k", "51k", "1m"]
QUICK = ["quick-pool", "quick-large"]


# --------------------------------------------------------------------------
# The reference: Google's kCenterGreedy as called by MoBYv2AL
# --------------------------------------------------------------------------
class ReferenceKCenterGreedy:
    """Re-implementation of the authors' k-Center-Greedy (dense distances)."""

    def __init__(self, features: np.ndarray, metric: str = "euclidean") -> None:
        self.features = features
        self.metric = metric
        self.min_distances = None
        self.already_selected: list[int] = []

    def update_distances(self, cluster_centers, only_new=True, reset_dist=False):
        if reset_dist:
            self.min_distances = None
        if only_new:
            cluster_centers = [d for d in cluster_centers if d not in self.already_selected]
        if len(cluster_centers):
            x = self.features[cluster_centers]
            dist = pairwise_distances(self.features, x, metric=self.metric)
            if self.min_distances is None:
                self.min_distances = np.min(dist, axis=1).reshape(-1, 1)
            else:
                self.min_distances = np.minimum(self.min_distances, dist)

    def select_batch_(self, already_selected, n):
        self.update_distances(already_selected, only_new=False, reset_dist=True)
        new_batch = []
        for _ in range(n):
            ind = int(np.argmax(self.min_distances))
            assert ind not in already_selected
            self.update_distances([ind], only_new=True, reset_dist=False)
            new_batch.append(ind)
        self.already_selected = already_selected
        return new_batch


def reference_picks(pool64: np.ndarray, n_candidates: int, n: int) -> np.ndarray:
    labelled = np.arange(n_candidates, pool64.shape[0])  # labelled rows last, as the authors
    return np.asarray(ReferenceKCenterGreedy(pool64).select_batch_(labelled, n), dtype=np.int64)


# --------------------------------------------------------------------------
# Step-by-step verification in float64, following our picks
# --------------------------------------------------------------------------
def verify_steps(features: np.ndarray, centres: np.ndarray, picks: np.ndarray) -> dict:
    """Classify every pick as equal / near-tie / mismatch against float64."""
    f = features.astype(np.float64)
    mean = f.mean(axis=0)
    f -= mean  # centred float64: the expansion below is then accurate to ~1e-15
    sq = np.einsum("ij,ij->i", f, f)
    min_sq = np.full(f.shape[0], np.inf)
    block = max(1, (1 << 24) // f.shape[0])
    for start in range(0, centres.shape[0], block):
        c = centres[start : start + block].astype(np.float64) - mean
        d2 = sq[:, None] + np.einsum("ij,ij->i", c, c)[None, :] - 2.0 * (f @ c.T)
        np.minimum(min_sq, d2.min(axis=1), out=min_sq)
    available = np.ones(f.shape[0], dtype=bool)
    equal, near, bad = 0, [], []
    for step, p in enumerate(picks.tolist()):
        dist = np.sqrt(np.maximum(min_sq, 0.0))
        best = dist[available].max()
        if not available[p]:
            bad.append({"step": step, "pick": p, "reason": "picked twice"})
        elif dist[p] == best:
            equal += 1
        else:
            gap = float((best - dist[p]) / best)
            entry = {"step": step, "relative_gap": gap}
            (near if gap <= RTOL else bad).append(entry)
        available[p] = False
        d2 = sq + sq[p] - 2.0 * (f @ f[p])
        np.minimum(min_sq, d2, out=min_sq)
    return {"steps": len(picks), "equal": equal, "near_ties": near, "mismatches": bad}


# --------------------------------------------------------------------------
# Runners
# --------------------------------------------------------------------------
def timed(fn, repeats):
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return result, times


def maxrss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # Linux reports KiB


def run_pool_case(case: Case, repeats: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    n_rows = case.n_candidates + case.n_labelled
    pool32 = rng.standard_normal((n_rows, case.dim), dtype=np.float32)
    pool64 = pool32.astype(np.float64)  # the reference works in float64
    candidates, labelled = pool32[: case.n_candidates], pool32[case.n_candidates :]
    print(f"[{case.name}] pool {n_rows} x {case.dim}: reference ...", flush=True)
    run_reference = functools.partial(reference_picks, pool64, case.n_candidates, case.picks)
    del pool64  # only the reference holds it
    ref, ref_times = timed(run_reference, repeats)
    del run_reference
    print(f"[{case.name}] ours ...", flush=True)
    ours, our_times = timed(
        lambda: k_center_greedy(candidates, case.picks, initial_centers=labelled), repeats
    )
    print(f"[{case.name}] torch-CPU loop (once) ...", flush=True)
    via_torch, torch_times = timed(
        lambda: kcenter._k_center_greedy(
            candidates, case.picks, labelled, device=None, chunk_size=None, torch_on_cpu=True
        ),
        1,
    )
    print(f"[{case.name}] float64 step-by-step check ...", flush=True)
    check = verify_steps(candidates, labelled, ours)
    same = ours == ref
    first_diff = int(np.argmin(same)) if not same.all() else None
    return {
        "case": case.name,
        "kind": case.kind,
        "n_candidates": case.n_candidates,
        "n_labelled": case.n_labelled,
        "dim": case.dim,
        "picks": case.picks,
        "reference_s": ref_times,
        "ours_s": our_times,
        "torch_cpu_s": torch_times,
        "reference_median_s": statistics.median(ref_times),
        "ours_median_s": statistics.median(our_times),
        "speedup": statistics.median(ref_times) / statistics.median(our_times),
        "identical_to_reference_run": bool(same.all()),
        "first_difference_step": first_diff,
        "torch_cpu_identical": bool((via_torch == ours).all()),
        "check": check,
    }


def run_large_case(case: Case, repeats: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((case.n_candidates, case.dim), dtype=np.float32)
    centres = rng.standard_normal((case.n_labelled, case.dim), dtype=np.float32)
    print(f"[{case.name}] {case.n_candidates} x {case.dim}: ours ...", flush=True)
    rss_before = maxrss_bytes()
    # The first repeat runs under tracemalloc (a few small allocations per
    # pick, so its overhead is negligible); the others run without it.
    tracemalloc.start()
    t0 = time.perf_counter()
    k_center_greedy(features, case.picks, initial_centers=centres)
    times = [time.perf_counter() - t0]
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_growth = maxrss_bytes() - rss_before
    _, more = timed(
        lambda: k_center_greedy(features, case.picks, initial_centers=centres), repeats - 1
    )
    times += more
    print(f"[{case.name}] torch-CPU loop (once) ...", flush=True)
    _, torch_times = timed(
        lambda: kcenter._k_center_greedy(
            features, case.picks, centres, device=None, chunk_size=None, torch_on_cpu=True
        ),
        1,
    )
    return {
        "case": case.name,
        "kind": case.kind,
        "n_candidates": case.n_candidates,
        "n_labelled": case.n_labelled,
        "dim": case.dim,
        "picks": case.picks,
        "ours_s": times,
        "ours_median_s": statistics.median(times),
        "torch_cpu_s": torch_times,
        "feature_matrix_bytes": int(features.nbytes),
        "tracemalloc_peak_bytes": int(traced_peak),
        "maxrss_growth_bytes": int(rss_growth),
    }


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------
def machine_info() -> dict:
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # noqa: BLE001 - informational only
        blas = "unknown"
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if "model name" in line)
    except (OSError, StopIteration):
        pass
    return {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numpy_blas": blas,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "sklearn": sklearn.__version__,
    }


def _loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:.1f}"


def print_table(results: list[dict]) -> None:
    pool = [r for r in results if r["kind"] == "pool"]
    large = [r for r in results if r["kind"] == "large"]
    if pool:
        head = (
            f"{'case':<11} {'pool (N x d)':>14} {'|L|':>5} {'picks':>5} {'reference s':>12} "
            f"{'ours s':>8} {'speed-up':>9} {'torch-CPU s':>12} {'equal':>7} {'near-ties':>9} "
            f"{'bad':>4}"
        )
        print(head)
        print("-" * len(head))
        for r in pool:
            shape = f"{r['n_candidates'] + r['n_labelled']} x {r['dim']}"
            c = r["check"]
            print(
                f"{r['case']:<11} {shape:>14} {r['n_labelled']:>5} "
                f"{r['picks']:>5} {r['reference_median_s']:>12.2f} {r['ours_median_s']:>8.2f} "
                f"{r['speedup']:>8.1f}x {r['torch_cpu_s'][0]:>12.2f} "
                f"{c['equal']:>7} {len(c['near_ties']):>9} {len(c['mismatches']):>4}"
            )
        for r in pool:
            c = r["check"]
            ident = (
                "identical to the reference run"
                if r["identical_to_reference_run"]
                else f"first differs from the reference run at step {r['first_difference_step']}"
            )
            print(
                f"  {r['case']}: {c['equal']}/{c['steps']} steps equal to the float64 maximum; "
                f"picks {ident}; torch-CPU picks identical: {r['torch_cpu_identical']}"
            )
            for t in c["near_ties"]:
                print(f"    near-tie at step {t['step']}: relative gap {t['relative_gap']:.2e}")
            for t in c["mismatches"]:
                print(f"    MISMATCH: {t}")
            print(f"    reference runs (s): {', '.join(f'{t:.2f}' for t in r['reference_s'])}")
            print(f"    ours runs (s):      {', '.join(f'{t:.2f}' for t in r['ours_s'])}")
            print(f"    load average (1 min) before/after: {r['loadavg_1min_before_after']}")
    if large:
        print()
        head = (
            f"{'case':<11} {'N x d':>14} {'M':>5} {'picks':>5} {'ours s':>8} {'torch-CPU s':>12} "
            f"{'tracemalloc MiB':>16} {'maxRSS+ MiB':>12} {'matrix MiB':>11}"
        )
        print(head)
        print("-" * len(head))
        for r in large:
            shape = f"{r['n_candidates']} x {r['dim']}"
            print(
                f"{r['case']:<11} {shape:>14} "
                f"{r['n_labelled']:>5} {r['picks']:>5} {r['ours_median_s']:>8.2f} "
                f"{r['torch_cpu_s'][0]:>12.2f} {mib(r['tracemalloc_peak_bytes']):>16} "
                f"{mib(r['maxrss_growth_bytes']):>12} {mib(r['feature_matrix_bytes']):>11}"
            )
            print(f"    ours runs (s): {', '.join(f'{t:.2f}' for t in r['ours_s'])}")
            print(f"    load average (1 min) before/after: {r['loadavg_1min_before_after']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds")
    parser.add_argument(
        "--sizes",
        default=None,
        help=f"comma-separated cases among {', '.join(PRESETS)} (default: {','.join(FULL)})",
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per case")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=None, help="JSON results path")
    args = parser.parse_args(argv)

    names = args.sizes.split(",") if args.sizes else (QUICK if args.quick else FULL)
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        parser.error(f"unknown size(s) {unknown}; choose among {list(PRESETS)}")
    repeats = args.repeats or (1 if args.quick else 3)
    if repeats < 1:
        parser.error("--repeats must be >= 1")
    output = args.output or ROOT / "benchmarks" / "results" / (
        "kcenter_speed_quick.json" if args.quick else "kcenter_speed.json"
    )

    info = machine_info()
    print(
        f"{info['cpu']} ({info['cpu_count']} CPUs), numpy {info['numpy']} "
        f"[{info['numpy_blas']}], torch {info['torch']}, sklearn {info['sklearn']}"
    )
    cases = [PRESETS[n] for n in names]
    # Large cases first: the RSS high-water mark must not be set by the pools.
    cases.sort(key=lambda c: c.kind != "large")
    results = []
    for case in cases:
        runner = run_large_case if case.kind == "large" else run_pool_case
        load_before = _loadavg()
        result = runner(case, repeats, args.seed)
        # Other processes on a shared machine slow multi-threaded BLAS a lot
        # (threads wait for each other at every call): keep the load on record.
        result["loadavg_1min_before_after"] = [load_before, _loadavg()]
        results.append(result)

    print()
    print_table(results)
    output.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": info, "repeats": repeats, "seed": args.seed, "rtol": RTOL}
    payload["results"] = results
    output.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {output}")
    failed = any(r["check"]["mismatches"] for r in results if r["kind"] == "pool")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
