"""README.md's code runs as written: every Python block, every ``moby-al`` command.

The Python blocks run in order in one fresh interpreter (later blocks use what
earlier ones defined), as a reader pasting them would. Every ``moby-al`` line is
parsed by the command's own parser and, for experiments, validated (a wrong
strategy or data set name fails here); the labelling and pretraining commands
run for real, the experiment runs in the slow tests.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)

# a server that runs until stopped (its test is tests/test_labelling_server.py),
# and a three-trial Fashion-MNIST study of hours: parsed and validated only
PARSE_ONLY = ("label serve", "compare")
SLOW = ("run", "plot")


def _blocks(language: str) -> list[str]:
    return [body for lang, body in _FENCE.findall(README.read_text()) if lang == language]


def _commands() -> list[list[str]]:
    lines = [line for body in _blocks("bash") for line in body.splitlines()]
    return [shlex.split(line.split(" # ")[0])[1:] for line in lines if line.startswith("moby-al ")]


def _kind(argv: list[str]) -> str:
    text = " ".join(argv)
    if text.startswith(PARSE_ONLY):
        return "parse"
    return "slow" if argv[0] in SLOW else "fast"


def test_the_readme_has_the_blocks_this_test_reads():
    assert len(_blocks("python")) >= 3
    kinds = {_kind(argv) for argv in _commands()}
    assert kinds == {"parse", "slow", "fast"}


@pytest.mark.parametrize("argv", _commands(), ids=lambda argv: " ".join(argv[:3]))
def test_every_command_parses_and_its_settings_are_valid(argv, tmp_path, monkeypatch):
    from moby_al_plugin.cli import _config_from, build_parser

    monkeypatch.chdir(tmp_path)
    if "--encoder" in argv:  # written by the README's pretrain line; here it need only exist
        (tmp_path / argv[argv.index("--encoder") + 1]).touch()

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse's way of refusing
        pytest.fail(f"`moby-al {' '.join(argv)}` is refused by the parser ({exc})")
    if args.command in ("run", "compare"):
        _config_from(args).validate()  # unknown strategies, data sets, backbones


def _moby_al(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "moby_al_plugin", *argv]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=1200)


@pytest.fixture
def readers_folder(tmp_path, digit_image_folder, digits):
    """What the README's commands expect to find: photos/ and pool.npy."""
    shutil.copytree(digit_image_folder[0], tmp_path / "photos")
    np.save(tmp_path / "pool.npy", digits.X_train[:256])
    return tmp_path


def _run_in_order(kinds: set[str], cwd: Path) -> list[str]:
    ran = []
    for argv in _commands():
        if _kind(argv) not in kinds:
            continue
        if argv[0] == "pretrain":  # a reader's pool is larger; ten epochs of 256 take seconds
            assert "--epochs" in argv
        done = _moby_al(argv, cwd)
        assert done.returncode == 0, f"moby-al {' '.join(argv)}\n{done.stderr[-3000:]}"
        ran.append(" ".join(argv))
    return ran


def test_the_labelling_and_pretraining_commands_run(readers_folder):
    ran = _run_in_order({"fast"}, readers_folder)
    assert any(r.startswith("label export") for r in ran) and any(
        r.startswith("pretrain") for r in ran
    )
    assert (readers_folder / "encoder.pt").is_file()
    header = (readers_folder / "labels.csv").read_text().splitlines()[0]
    assert header.startswith("path,label")


@pytest.mark.slow
def test_the_experiment_commands_run(readers_folder):
    # pretrain first: a run below starts from its encoder.pt
    _run_in_order({"fast"}, readers_folder)
    ran = _run_in_order({"slow"}, readers_folder)
    assert len(ran) >= 4
    assert (readers_folder / "runs" / "b" / "results.csv").is_file()


@pytest.mark.slow
def test_the_python_blocks_run_in_order(tmp_path):
    code = "\n\n".join(_blocks("python"))
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=1800
    )
    assert done.returncode == 0, done.stderr[-3000:]
    scores = [float(line.split()[-1]) for line in done.stdout.splitlines() if line.strip()]
    # the cold-start pipeline, three cycles of the network, the spreader: all learn
    assert len(scores) == 5 and min(scores) > 0.5, done.stdout
