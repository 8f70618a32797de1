"""The GPU check, for a machine with a CUDA GPU: one script, at most 10 minutes.

Steps, each in its own process with its own time limit, so that one failure
leaves the others' figures:

1. ``cuda-tests``: the test suite's GPU tests (``pytest -m gpu``);
2. ``kcenter``: one k-Center-Greedy query of 1,000 picks on 1,000,000 x 128
   random features, on the GPU against the CPU (numpy), with the share of
   identical picks;
3. ``pretrain``: ``moby_al_plugin pretrain`` under ``torchrun`` with NCCL, two
   processes when two GPUs exist, else one, on a 50,000-image pool on disk;
4. ``paper-slice``: one slice of the paper's Fashion-MNIST protocol
   (``benchmarks/paper_protocol.py --cycles 1 --epochs 15``, ResNet-18).

Usage on the GPU machine, from the repository root (skorch and modAL are
not in every image: their wheels, if carried in ``.whl/``, are installed to
``/tmp/site`` first; Fashion-MNIST is read from ``--data-root``). Beforehand,
on a machine with an index: ``pip download --no-deps -d .whl skorch==1.4.0
modAL-python==0.4.1`` and copy the four Fashion-MNIST IDX files to
``.ci-cache/fashion-mnist``; both folders are ignored by git and travel as
carried paths::

    python3 benchmarks/gpu_check.py --output $OUT/gpu_check --data-root .ci-cache/fashion-mnist
    python3 benchmarks/gpu_check.py --quick     # CPU, tiny, seconds: for the tests

It prints one line per step and a Markdown table for the README, and writes
``OUTPUT.json`` and one ``OUTPUT-STEP.log`` per step.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SITE = Path("/tmp/site")


def _install_carried_wheels() -> dict:
    """pip install the wheels in ``.whl/`` (no index, no dependencies) into /tmp/site."""
    wheels = sorted(str(p) for p in (ROOT / ".whl").glob("*.whl"))
    if not wheels:
        return {}
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps"]
    command += ["--no-compile", "--upgrade", "--target", str(SITE), *wheels]
    subprocess.run(command, check=True)
    return {"PYTHONPATH": f"{SITE}{os.pathsep}{ROOT}"}


def _kcenter_code(n: int, picks: int, device: str) -> str:
    return f"""
import json, time
import numpy as np
from moby_al_plugin import k_center_greedy
x = np.random.RandomState(0).standard_normal(({n}, 128)).astype(np.float32)
k_center_greedy(x[:10_000], 10, device="{device}")  # warm-up (CUDA context, kernels)
t = time.perf_counter(); cpu = k_center_greedy(x, {picks}); cpu_s = time.perf_counter() - t
t = time.perf_counter(); dev = k_center_greedy(x, {picks}, device="{device}")
dev_s = time.perf_counter() - t
first = next((i for i, (a, b) in enumerate(zip(cpu, dev)) if a != b), len(cpu))
print(json.dumps(dict(n={n}, d=128, picks={picks}, device="{device}", cpu_seconds=round(cpu_s, 3),
    device_seconds=round(dev_s, 3), speedup=round(cpu_s / dev_s, 2),
    same_picks=float(np.isin(dev, cpu).mean()), identical_until=first)))
"""


def _pool_code(path: Path, n: int) -> str:
    return f"""
import numpy as np
rng = np.random.RandomState(0)
protos = np.kron(rng.rand(10, 8, 8), np.ones((4, 4)))
x = protos[rng.randint(0, 10, {n})] + rng.normal(0, 0.1, ({n}, 32, 32))
np.save("{path}", (np.clip(x, 0, 1) * 255).round().astype(np.uint8)[:, None])
"""


def steps(args: argparse.Namespace, out: Path) -> list[tuple[str, list[str], int]]:
    """(name, command, time limit in seconds) of each step."""
    py = sys.executable
    quick = args.quick
    device = "cpu" if quick else "cuda"
    gpus = 0 if quick else _cuda_count()
    pool = out.with_name(out.name + "-pool.npy")
    tests = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "gpu"]
    if quick:  # no GPU: the selection must exist, nothing runs
        tests.append("--collect-only")
    pretrain = [
        str(Path(py).with_name("torchrun")) if not quick else py,
        *(["--nproc-per-node", str(max(1, min(2, gpus))), "-m"] if not quick else ["-m"]),
        "moby_al_plugin",
        "pretrain",
        "--images",
        str(pool),
        "--output",
        str(out.with_name(out.name + "-encoder.pt")),
        "--epochs",
        "1",
        "--batch-size",
        "256" if not quick else "64",
        "--device",
        device,
        "--seed",
        "0",
    ]
    paper = [py, str(ROOT / "benchmarks" / "paper_protocol.py")]
    paper += ["--quick"] if quick else ["--device", "cuda", "--cycles", "1", "--epochs", "15"]
    paper += ["--output", str(out.with_name(out.name + "-paper"))]
    if args.data_root and not quick:
        paper += ["--data-root", args.data_root]
    n_pool = 2_000 if quick else 50_000
    return [
        ("cuda-tests", tests, 150),
        ("kcenter", [py, "-c", _kcenter_code(20_000 if quick else 1_000_000, 1_000, device)], 90),
        ("make-pool", [py, "-c", _pool_code(pool, n_pool)], 30),
        ("pretrain", pretrain, 90),
        ("paper-slice", paper, 200),
    ]


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(ROOT / "gpu_check"), help="OUTPUT.json and logs")
    parser.add_argument("--data-root", default=None, help="Fashion-MNIST IDX files")
    parser.add_argument("--quick", action="store_true", help="CPU, tiny: for the tests")
    args = parser.parse_args(argv)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
    env.update(_install_carried_wheels())
    results = []
    for name, command, limit in steps(args, out):
        started = time.perf_counter()
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=limit, env=env, cwd=ROOT
            )
            status, text = done.returncode, done.stdout + done.stderr
        except subprocess.TimeoutExpired as exc:
            status = "timeout"
            text = (
                (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
            )
        seconds = round(time.perf_counter() - started, 1)
        out.with_name(f"{out.name}-{name}.log").write_text(text or "")
        row = {"step": name, "status": status, "seconds": seconds}
        last = (text or "").strip().splitlines()[-1:] or [""]
        try:
            row["figures"] = json.loads(last[0])
        except json.JSONDecodeError:
            row["tail"] = last[0][-300:]
        results.append(row)
        print(json.dumps(row), flush=True)
    payload = {"machine": _machine(), "quick": args.quick, "steps": results}
    out.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
    print("\n| step | status | seconds | result |\n| --- | --- | --- | --- |")
    for row in results:
        print(
            f"| {row['step']} | {row['status']} | {row['seconds']} | "
            f"{row.get('figures', row.get('tail', ''))} |"
        )
    print(f"wrote {out.with_suffix('.json')}")
    return payload


def _machine() -> dict:
    import platform

    import torch

    info = {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
    }
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


if __name__ == "__main__":
    main()
