"""The moby-al command through subprocess, including a SIGKILL and --resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--initial-size",
    "30",
    "--query-size",
    "20",
    "--epochs",
    "2",
    "--batch-size",
    "16",
    "--queue-size",
    "64",
    "--subset-size",
    "150",
    "--pool-size",
    "300",
    "--test-size",
    "150",
    "--min-samples-per-epoch",
    "64",
    "--train-samples",
    "none",
    "--pretrain-epochs",
    "1",
    "--no-progress",
]


def moby_al(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "moby_al_plugin", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


@pytest.mark.parametrize("command", [[], ["run"], ["compare"], ["plot"]])
def test_help(command):
    result = moby_al(*command, "--help")
    assert result.returncode == 0
    assert "usage: moby-al" in result.stdout


def test_run_then_plot(tmp_path):
    out = tmp_path / "run"
    result = moby_al("run", *TINY, "--cycles", "1", "--output", str(out))
    assert result.returncode == 0, result.stderr
    # the default strategies: ours on the pretrained net, random, the paper's
    for name in ("typiclust", "random", "mobyv2al"):
        assert name in result.stdout
    assert "pretrained small_cnn on 300 pool images for 1 epochs" in result.stdout
    assert "cycle 1: 50 labels" in result.stdout
    (out / "learning_curves.png").unlink()
    result = moby_al("plot", str(out))
    assert result.returncode == 0, result.stderr
    assert (out / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
    result = moby_al("plot", "--markdown", str(out))
    assert result.returncode == 0, result.stderr
    assert "| strategy | 30 | 50 | AUC | train s | query s |" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--dataset", "nope"], "unknown data set"),
        (["run", "--backbone", "nope"], "unknown backbone"),
        (["run", "--strategies", "mobyv2al,nope"], "unknown strategy 'nope'"),
        (["run", "--cycles", "99"], "pool holds"),
        (["run", "--resume"], "--resume needs --output"),
        (
            ["run", "--dataset", "fashion-mnist", "--data-root", "/nonexistent/fm"],
            "dataset-fashion-mnist",
        ),
        (["plot", "/nonexistent/results"], "holds no experiment"),
        (["run", "--contrastive-every", "0"], "contrastive_every must be a positive integer"),
    ],
)
def test_errors_are_one_line_with_nonzero_status(tmp_path, args, message):
    result = moby_al(
        *args,
        *(
            []
            if args[0] == "plot" or "--resume" in args
            else ["--output", str(tmp_path / "o"), "--no-progress"]
        ),
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert message in result.stderr
    assert result.stderr.strip().count("\n") == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--precision", "fp16"], "invalid choice: 'fp16'"),
        (["run", "--threads", "0"], "--threads: must be at least 1"),
        (["pretrain", "--precision", "x", "--output", "e.pt"], "invalid choice: 'x'"),
        (["label", "next", "--precision", "half"], "invalid choice: 'half'"),
        (["label", "next", "--threads", "-2"], "--threads: must be a positive integer"),
    ],
)
def test_bad_precision_and_threads_are_refused_by_the_parser(args, message):
    result = moby_al(*args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_kill_mid_cycle_then_resume_matches_uninterrupted(tmp_path):
    args = [*TINY, "--cycles", "3", "--epochs", "6", "--strategies", "mobyv2al"]
    reference = tmp_path / "reference"
    assert moby_al("run", *args, "--output", str(reference)).returncode == 0

    out = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [sys.executable, "-m", "moby_al_plugin", "run", *args, "--output", str(out)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    results = out / "results.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline:
        if results.exists() and len(results.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    time.sleep(0.5)  # well into the training of cycle 2
    assert process.poll() is None, "the run ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = [json.loads(line) for line in results.read_text().splitlines()]
    assert 2 <= len(before) < 4

    result = moby_al("run", *args, "--output", str(out), "--resume")
    assert result.returncode == 0, result.stderr
    after = [json.loads(line) for line in results.read_text().splitlines()]
    expected = [json.loads(line) for line in (reference / "results.jsonl").read_text().splitlines()]
    keys = ("strategy", "trial", "cycle", "n_labeled", "accuracy", "queried")
    assert [[r[k] for k in keys] for r in after] == [[r[k] for k in keys] for r in expected]
    # the cycles finished before the kill were kept, not redone
    assert [r["train_seconds"] for r in after[: len(before)]] == [
        r["train_seconds"] for r in before
    ]


@pytest.mark.parametrize("bug", [ValueError("a bug, not the user's"), OSError("a bug too")])
def test_other_errors_keep_their_traceback(monkeypatch, bug):
    from moby_al_plugin import cli

    def broken(*args, **kwargs):
        raise bug

    monkeypatch.setattr(cli, "run_experiment", broken)
    with pytest.raises(type(bug), match="a bug"):
        cli.main(["run", "--no-progress", "--output", "unused"])


def test_debug_shows_the_traceback_of_a_user_error(tmp_path, capsys):
    from moby_al_plugin import MoBYALError, cli

    args = ["run", "--dataset", "nope", "--output", str(tmp_path / "o"), "--no-progress"]
    assert cli.main(args) == 2
    assert "unknown data set" in capsys.readouterr().err
    for debug in (["--debug", *args], [*args, "--debug"]):
        with pytest.raises(MoBYALError, match="unknown data set"):
            cli.main(debug)
    result = moby_al("--debug", "plot", "/nonexistent/results")
    assert result.returncode == 1 and "Traceback" in result.stderr
