"""TypiClust at scale: the sampled algorithm against the exact one, and 1M points.

Two parts, run with one thread per process (``OMP_NUM_THREADS=1``):

1. Comparison on pools where both algorithms run: Fashion-MNIST (the PCA of
   the raw pixels to 64 dimensions, L2-normalised, a seeded 50,000 of the
   60,000 training images) and a 50,000-point Gaussian mixture in 128
   dimensions. Each case picks with ``scale="exact"`` and with
   ``scale="sampled"`` (with the sample sizes scaled down to the pool, so that
   the sampling really happens: k-means fitted on 10,000 points, and in the
   20-cluster case typicality against 500 members of each cluster of about
   2,500), and with random picks as a yardstick. Figures:

   - the overlap of the picked points, and of the picked clusters (the exact
     run's clusters that the picks fall in);
   - the mean typicality of the picks under the exact definition (inside
     their cluster of the exact run), its percentile within that cluster,
     and the typicality among the whole pool (``K`` nearest of all points);
   - the coverage: the mean distance from a pool point to its nearest pick
     or labelled point;
   - the wall times.

2. Scale: 1,000,000 x 128 float16 features in a ``np.memmap`` (a Gaussian
   mixture of 200 components of unequal weights, L2-normalised, written
   under a temporary folder in ``/tmp`` and deleted afterwards), 1,000
   picks, in a fresh process: wall time and peak resident memory
   (``VmHWM``), next to the memory after the imports and the size of the
   features. The picks' coverage and the share of mixture components they
   reach are compared with random picks (and, with ``--exact-large``, with
   the exact algorithm's picks, time and memory).

Usage (from the repository root)::

    OMP_NUM_THREADS=1 python benchmarks/typiclust_scale.py           # a few minutes
    OMP_NUM_THREADS=1 python benchmarks/typiclust_scale.py --quick   # a few seconds
    # also the exact algorithm on the 1M-point cases of 1,000 picks (about 4 minutes each)
    OMP_NUM_THREADS=1 python benchmarks/typiclust_scale.py --exact-large

Results are printed and written as JSON (default
``benchmarks/results/typiclust_scale.json``; ``--quick`` writes
``typiclust_scale_quick.json`` so it never overwrites a full run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from _common import RESULTS, ROOT, machine_info

from moby_al_plugin.selection.typicality import (
    SAMPLED_ABOVE,
    kmeans_labels,
    typicality,
    typiclust_select,
)

N_NEIGHBORS = 20  # typiclust_select's default K


@dataclass(frozen=True)
class PoolCase:
    name: str
    pool: str  # "fashion" or "mixture"
    n_candidates: int
    n_labelled: int
    dim: int
    picks: int
    # options of the sampled run
    sampled: dict = field(default_factory=dict)


@dataclass(frozen=True)
class LargeCase:
    name: str
    n_candidates: int
    n_labelled: int
    dim: int
    picks: int
    components: int = 200
    # options of typiclust_select; none: scale="auto" and the default sample sizes
    options: dict = field(default_factory=dict)


FULL_POOL = [
    PoolCase("fashion-50k-1000", "fashion", 50_000, 0, 64, 1_000, {"kmeans_sample_size": 10_000}),
    PoolCase(
        "fashion-50k-20",
        "fashion",
        50_000,
        0,
        64,
        20,
        {"kmeans_sample_size": 10_000, "cluster_sample_size": 500},
    ),
    PoolCase(
        "fashion-50k-L200-300", "fashion", 50_000, 200, 64, 300, {"kmeans_sample_size": 10_000}
    ),
    PoolCase("mixture-50k-1000", "mixture", 50_000, 0, 128, 1_000, {"kmeans_sample_size": 10_000}),
    PoolCase(
        "mixture-50k-20",
        "mixture",
        50_000,
        0,
        128,
        20,
        {"kmeans_sample_size": 10_000, "cluster_sample_size": 500},
    ),
]
FULL_LARGE = [
    LargeCase("1m-1000", 1_000_000, 0, 128, 1_000),
    LargeCase("1m-L1000-1000", 1_000_000, 1_000, 128, 1_000),
    # few picks: few, large clusters, where the exact kNN search is the slowest
    LargeCase("1m-10", 1_000_000, 0, 128, 10),
]
QUICK_POOL = [
    PoolCase("quick-mixture-100", "mixture", 3_000, 0, 16, 100, {"kmeans_sample_size": 1_000}),
    PoolCase(
        "quick-mixture-5",
        "mixture",
        3_000,
        20,
        16,
        5,
        {"kmeans_sample_size": 1_000, "cluster_sample_size": 100},
    ),
]
QUICK_LARGE = [
    LargeCase(
        "quick-50k-100",
        50_000,
        0,
        16,
        100,
        components=40,
        # below SAMPLED_ABOVE: ask for the sampled algorithm, with samples that sample
        options={"scale": "sampled", "kmeans_sample_size": 10_000, "cluster_sample_size": 200},
    )
]


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------
def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def mixture(n: int, dim: int, components: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalised Gaussian mixture (float32) and the component of each point."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(components, dim))
    weights = rng.dirichlet(np.ones(components))
    which = rng.choice(components, size=n, p=weights)
    x = centres[which] + 0.7 * rng.normal(size=(n, dim))
    return _normalise(x).astype(np.float32), which


def write_mixture_memmap(
    path: Path, n: int, dim: int, components: int, seed: int, chunk: int = 100_000
) -> np.ndarray:
    """Write an ``(n, dim)`` float16 mixture to ``path`` chunk by chunk; return the components."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(components, dim)).astype(np.float32)
    weights = rng.dirichlet(np.ones(components))
    which = rng.choice(components, size=n, p=weights)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(n, dim))
    for start in range(0, n, chunk):
        part = which[start : start + chunk]
        x = centres[part] + 0.7 * rng.standard_normal((len(part), dim), dtype=np.float32)
        out[start : start + chunk] = _normalise(x)
    out.flush()
    del out
    return which


def fashion_features(n: int, dim: int, seed: int) -> np.ndarray:
    """PCA of Fashion-MNIST training pixels, L2-normalised, a seeded ``n`` of them."""
    from sklearn.decomposition import PCA

    from moby_al_plugin.data.datasets import load_fashion_mnist

    images = load_fashion_mnist().X_train
    rows = np.sort(np.random.default_rng(seed).choice(len(images), size=n, replace=False))
    pixels = images[rows].reshape(n, -1).astype(np.float32) / 255.0
    pca = PCA(n_components=dim, svd_solver="randomized", random_state=seed)
    return _normalise(pca.fit_transform(pixels)).astype(np.float32)


# --------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------
def nearest_distance(points: np.ndarray, centres: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Euclidean distance from every point to its nearest centre."""
    points = points.astype(np.float64)
    centres = centres.astype(np.float64)
    c_sq = np.einsum("ij,ij->i", centres, centres)
    out = np.empty(len(points))
    for start in range(0, len(points), chunk):
        x = points[start : start + chunk]
        sq = np.einsum("ij,ij->i", x, x)[:, None] + c_sq[None, :] - 2.0 * (x @ centres.T)
        out[start : start + chunk] = np.sqrt(np.maximum(sq.min(axis=1), 0.0))
    return out


def pool_typicality(pool: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Typicality of ``pool[rows]`` among the whole pool (itself left out)."""
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=N_NEIGHBORS + 1).fit(pool)
    distances, _ = nn.kneighbors(pool[rows])
    return 1.0 / (distances[:, 1:].mean(axis=1) + 1e-5)


class ExactClusters:
    """The exact run's clusters, and typicality inside them (the exact definition)."""

    def __init__(self, features: np.ndarray, n_labelled: int, picks: int, seed: int) -> None:
        # the same call, with the same seed, as typiclust_select(scale="exact")
        n_clusters = min(n_labelled + picks, 500)
        self.features = features
        self.n_labelled = n_labelled
        self.labels = kmeans_labels(features, n_clusters, random_state=seed)
        self._typ: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def of(self, picks: np.ndarray) -> np.ndarray:
        return self.labels[self.n_labelled + picks]

    def typicality(self, picks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Typicality of each pick in its cluster, and its percentile there."""
        values, percentiles = [], []
        for row in self.n_labelled + picks:
            c = int(self.labels[row])
            if c not in self._typ:
                members = np.flatnonzero(self.labels == c)
                self._typ[c] = (members, typicality(self.features[members], N_NEIGHBORS))
            members, typ = self._typ[c]
            value = typ[np.searchsorted(members, row)]
            values.append(value)
            percentiles.append(100.0 * np.mean(typ <= value))
        return np.asarray(values), np.asarray(percentiles)


def describe(picks, pool, labelled, clusters: ExactClusters, seconds=None) -> dict:
    typ, pct = clusters.typicality(picks)
    centres = pool[picks] if labelled is None else np.concatenate([labelled, pool[picks]])
    out = {
        "wall_s": None if seconds is None else round(seconds, 2),
        "distinct": int(len(set(picks.tolist()))),
        "clusters_hit": int(len(set(clusters.of(picks).tolist()))),
        "typicality_in_exact_cluster": float(typ.mean()),
        "typicality_percentile_in_exact_cluster": float(pct.mean()),
        "typicality_in_pool": float(pool_typicality(pool, picks).mean()),
        "coverage_mean_distance": float(nearest_distance(pool, centres).mean()),
    }
    return out


def run_pool_case(case: PoolCase, seed: int) -> dict:
    total = case.n_candidates + case.n_labelled
    if case.pool == "fashion":
        features = fashion_features(total, case.dim, seed)
    else:
        features, _ = mixture(total, case.dim, 100, seed)
    # labelled rows first (a seeded random choice), candidates after
    order = np.random.default_rng(seed + 1).permutation(total)
    features = features[order]
    labelled = features[: case.n_labelled] if case.n_labelled else None
    pool = features[case.n_labelled :]

    started = time.perf_counter()
    exact = typiclust_select(labelled, pool, case.picks, scale="exact", random_state=seed)
    exact_s = time.perf_counter() - started
    # the spread of the exact algorithm itself: another k-means seed
    other = typiclust_select(labelled, pool, case.picks, scale="exact", random_state=seed + 10)
    started = time.perf_counter()
    sampled = typiclust_select(
        labelled, pool, case.picks, scale="sampled", random_state=seed, **case.sampled
    )
    sampled_s = time.perf_counter() - started
    rand = np.random.default_rng(seed + 2).choice(len(pool), size=case.picks, replace=False)

    clusters = ExactClusters(features, case.n_labelled, case.picks, seed)
    exact_clusters = set(clusters.of(exact).tolist())

    def overlaps(picks: np.ndarray) -> dict:
        hit = set(clusters.of(picks).tolist())
        return {
            "point_overlap": len(set(exact.tolist()) & set(picks.tolist())) / case.picks,
            "cluster_overlap": len(exact_clusters & hit) / len(exact_clusters),
        }

    return {
        "case": case.name,
        "pool": case.pool,
        "n_candidates": case.n_candidates,
        "n_labelled": case.n_labelled,
        "dim": case.dim,
        "picks": case.picks,
        "n_clusters": int(min(case.n_labelled + case.picks, 500)),
        "sampled_options": case.sampled,
        "exact": describe(exact, pool, labelled, clusters, exact_s),
        "exact_other_seed": {**describe(other, pool, labelled, clusters), **overlaps(other)},
        "sampled": {**describe(sampled, pool, labelled, clusters, sampled_s), **overlaps(sampled)},
        "random": {**describe(rand, pool, labelled, clusters), **overlaps(rand)},
    }


# --------------------------------------------------------------------------
# The large case, in a fresh process
# --------------------------------------------------------------------------
def _status() -> dict:
    """Memory figures of this process from /proc/self/status, in bytes."""
    out = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                    out[key] = int(value.split()[0]) * 1024
    except OSError:  # not Linux: the maximum RSS only
        import resource

        out["VmHWM"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


def large_worker(
    path: Path, labelled_path: Path | None, picks: int, seed: int, options: dict, out: Path
) -> None:
    """Pick from the memmap at ``path``; write the picks and figures beside ``out``."""
    features = np.load(path, mmap_mode="r")
    labelled = None if labelled_path is None else np.load(labelled_path)
    before = _status()
    started = time.perf_counter()
    chosen = typiclust_select(labelled, features, picks, random_state=seed, **options)
    seconds = time.perf_counter() - started
    after = _status()
    np.save(out.with_suffix(".npy"), chosen)
    figures = {"wall_s": round(seconds, 2), "status_before": before, "status_after": after}
    out.write_text(json.dumps(figures))


def run_large_case(case: LargeCase, seed: int, with_exact: bool = False) -> dict:
    with tempfile.TemporaryDirectory(prefix="typiclust_scale_", dir="/tmp") as tmp:
        tmp = Path(tmp)
        path = tmp / "features.npy"
        started = time.perf_counter()
        total = case.n_candidates + case.n_labelled
        which = write_mixture_memmap(path, total, case.dim, case.components, seed)
        write_s = time.perf_counter() - started
        # the labelled rows are the last ones, kept in memory; the candidates a memmap view
        labelled_path = None
        if case.n_labelled:
            full = np.load(path, mmap_mode="r")
            labelled_path = tmp / "labelled.npy"
            np.save(labelled_path, np.asarray(full[case.n_candidates :], dtype=np.float32))
            candidates = np.lib.format.open_memmap(
                tmp / "candidates.npy",
                mode="w+",
                dtype=np.float16,
                shape=(case.n_candidates, case.dim),
            )
            candidates[:] = full[: case.n_candidates]
            candidates.flush()
            del candidates, full
            path.unlink()
            path = tmp / "candidates.npy"

        def pick(options: dict) -> tuple[dict, np.ndarray]:
            # a fresh process: its peak memory is this run's alone
            figures_path = tmp / f"figures-{options.get('scale', 'auto')}.json"
            command = [sys.executable, str(Path(__file__).resolve()), "--large-worker", str(path)]
            command += ["--picks", str(case.picks), "--seed", str(seed)]
            command += ["--options", json.dumps(options), "--out", str(figures_path)]
            if labelled_path is not None:
                command += ["--labelled", str(labelled_path)]
            subprocess.run(command, check=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
            return json.loads(figures_path.read_text()), np.load(figures_path.with_suffix(".npy"))

        figures, picks = pick(case.options)

        # coverage of a seeded sample of the pool, against random picks
        pool = np.load(path, mmap_mode="r")
        rng = np.random.default_rng(seed + 3)
        probe = np.sort(
            rng.choice(case.n_candidates, size=min(20_000, case.n_candidates), replace=False)
        )
        probe_x = np.asarray(pool[probe], dtype=np.float32)
        rand = np.sort(rng.choice(case.n_candidates, size=case.picks, replace=False))
        labelled = None if labelled_path is None else np.load(labelled_path)

        def coverage(rows: np.ndarray) -> float:
            centres = np.asarray(pool[np.sort(rows)], dtype=np.float32)
            if labelled is not None:
                centres = np.concatenate([labelled, centres])
            return float(nearest_distance(probe_x, centres).mean())

        n_components = len(np.unique(which[: case.n_candidates]))
        result = {
            "case": case.name,
            "n_candidates": case.n_candidates,
            "n_labelled": case.n_labelled,
            "dim": case.dim,
            "picks": case.picks,
            "dtype": "float16 memmap",
            "options": case.options,
            "algorithm": case.options.get("scale", "sampled" if total > SAMPLED_ABOVE else "exact"),
            "write_features_s": round(write_s, 1),
            "wall_s": figures["wall_s"],
            "distinct": int(len(set(picks.tolist()))),
            "feature_bytes": int(case.n_candidates * case.dim * 2),
            "rss_after_imports_bytes": figures["status_before"].get("VmRSS"),
            "peak_rss_bytes": figures["status_after"]["VmHWM"],
            # what the run adds at its peak beyond the imports and the (mapped) features
            "peak_rss_minus_imports_and_features_bytes": figures["status_after"]["VmHWM"]
            - figures["status_before"].get("VmRSS", 0)
            - int(case.n_candidates * case.dim * 2),
            "status_before": figures["status_before"],
            "status_after": figures["status_after"],
            "coverage_mean_distance": coverage(picks),
            "coverage_mean_distance_random": coverage(rand),
            "components": int(n_components),
            "components_hit": int(len(np.unique(which[picks]))),
            "components_hit_random": int(len(np.unique(which[rand]))),
        }
        if with_exact:
            exact_figures, exact_picks = pick({"scale": "exact"})
            result["exact"] = {
                "wall_s": exact_figures["wall_s"],
                "peak_rss_bytes": exact_figures["status_after"]["VmHWM"],
                "point_overlap": len(set(picks.tolist()) & set(exact_picks.tolist())) / case.picks,
                "coverage_mean_distance": coverage(exact_picks),
                "components_hit": int(len(np.unique(which[exact_picks]))),
            }
    return result


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------
def mib(n_bytes: float | None) -> str:
    return "?" if n_bytes is None else f"{n_bytes / 2**20:.0f}"


def print_pool_table(results: list[dict]) -> None:
    head = (
        f"{'case':<22} {'method':<16} {'wall s':>7} {'pt ovl':>6} {'cl ovl':>6} {'clusters':>8} "
        f"{'typ(cluster)':>12} {'pctile':>6} {'typ(pool)':>9} {'coverage':>8}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        for method in ("exact", "exact_other_seed", "sampled", "random"):
            m = r[method]
            wall = "" if m["wall_s"] is None else f"{m['wall_s']:.2f}"
            ovl = (
                (f"{m['point_overlap']:.2f}", f"{m['cluster_overlap']:.2f}")
                if "point_overlap" in m
                else ("", "")
            )
            print(
                f"{r['case'] if method == 'exact' else '':<22} {method:<16} {wall:>7} "
                f"{ovl[0]:>6} {ovl[1]:>6} {m['clusters_hit']:>8} "
                f"{m['typicality_in_exact_cluster']:>12.3f} "
                f"{m['typicality_percentile_in_exact_cluster']:>6.1f} "
                f"{m['typicality_in_pool']:>9.3f} {m['coverage_mean_distance']:>8.4f}"
            )


def print_large_table(results: list[dict]) -> None:
    head = (
        f"{'case':<15} {'N x d':>14} {'M':>5} {'picks':>5} {'wall s':>7} {'peak RSS MiB':>12} "
        f"{'after imports':>13} {'features MiB':>12} {'extra MiB':>9} {'coverage':>8} "
        f"{'random':>8} {'comp. hit':>9} {'random':>6}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        print(
            f"{r['case']:<15} {r['n_candidates']:>8} x {r['dim']:<3} {r['n_labelled']:>5} "
            f"{r['picks']:>5} {r['wall_s']:>7.1f} {mib(r['peak_rss_bytes']):>12} "
            f"{mib(r['rss_after_imports_bytes']):>13} {mib(r['feature_bytes']):>12} "
            f"{mib(r['peak_rss_minus_imports_and_features_bytes']):>9} "
            f"{r['coverage_mean_distance']:>8.4f} {r['coverage_mean_distance_random']:>8.4f} "
            f"{r['components_hit']:>4}/{r['components']:<4} {r['components_hit_random']:>6}"
        )
        if "exact" in r:
            e = r["exact"]
            print(
                f"  scale='exact' on the same features: {e['wall_s']:.1f} s, peak RSS "
                f"{mib(e['peak_rss_bytes'])} MiB, coverage {e['coverage_mean_distance']:.4f}, "
                f"components hit {e['components_hit']}/{r['components']}, "
                f"picks shared with the sampled run {e['point_overlap']:.2f}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small pools, a few seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=None, help="JSON results path")
    parser.add_argument("--skip-large", action="store_true", help="the comparison only")
    parser.add_argument("--skip-pool", action="store_true", help="the large cases only")
    parser.add_argument(
        "--exact-large",
        action="store_true",
        help="also time scale='exact' on the large cases of 100 picks or more (minutes each; "
        "with fewer picks its clusters of 100,000 points would take hours)",
    )
    # the large case's child process
    parser.add_argument("--large-worker", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--labelled", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--picks", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--options", type=json.loads, default={}, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.large_worker is not None:
        large_worker(
            args.large_worker, args.labelled, args.picks, args.seed, args.options, args.out
        )
        return 0

    output = args.output or RESULTS / (
        "typiclust_scale_quick.json" if args.quick else "typiclust_scale.json"
    )
    started = time.perf_counter()
    large = [] if args.skip_large else (QUICK_LARGE if args.quick else FULL_LARGE)
    pools = [] if args.skip_pool else (QUICK_POOL if args.quick else FULL_POOL)
    large_results = []
    for case in large:
        print(f"running {case.name} ...", flush=True)
        with_exact = args.exact_large and case.picks >= 100
        large_results.append(run_large_case(case, args.seed, with_exact))
    pool_results = []
    for case in pools:
        print(f"running {case.name} ...", flush=True)
        pool_results.append(run_pool_case(case, args.seed))

    print()
    if pool_results:
        print_pool_table(pool_results)
        print()
    if large_results:
        print_large_table(large_results)
    payload = {
        "machine": machine_info(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "loadavg_1min_end": round(os.getloadavg()[0], 2),
        "seed": args.seed,
        "quick": args.quick,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "pool_cases": pool_results,
        "large_cases": large_results,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
