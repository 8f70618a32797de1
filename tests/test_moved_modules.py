"""The module paths of release 0.1.0 still import, and its run folders still resume."""

from __future__ import annotations

import gzip
import importlib
import json
import shutil
import sys
import warnings
from pathlib import Path

import pytest

import moby_al_plugin
from moby_al_plugin._moved_modules import MOVED_MODULES
from moby_al_plugin.experiments import ExperimentConfig, run_experiment

RELEASE_0_1_0_RUN = Path(__file__).parent / "data" / "run-folder-0.1.0"


@pytest.mark.parametrize("old", sorted(MOVED_MODULES))
def test_an_old_module_path_is_the_new_module_and_warns(old):
    new = importlib.import_module(f"moby_al_plugin.{MOVED_MODULES[old]}")
    sys.modules.pop(f"moby_al_plugin.{old}", None)  # an earlier test may have aliased it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(f"moby_al_plugin.{old}")
    assert module is new
    assert [str(w.message) for w in caught] == [
        f"moby_al_plugin.{old} is now {new.__name__}; the old path goes in the next release"
    ]
    # the module keeps its own name and spec, whichever path reached it first
    assert module.__name__ == module.__spec__.name == new.__name__


def test_the_first_import_of_an_old_path_names_the_new_one(tmp_path):
    import subprocess

    code = (
        "import warnings; warnings.simplefilter('always')\n"
        "from moby_al_plugin.estimator import MoBYClassifier\n"
        "import moby_al_plugin.loaders.digits as old, moby_al_plugin.data.loaders.digits as new\n"
        "assert old is new and MoBYClassifier.__module__ == 'moby_al_plugin.classifier'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "moby_al_plugin.estimator is now moby_al_plugin.classifier" in done.stderr
    assert "moby_al_plugin.loaders.digits is now moby_al_plugin.data.loaders.digits" in done.stderr


def test_the_moby_module_of_0_1_0_still_holds_all_its_names():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from moby_al_plugin import moby

    for name in ("MoBYNetwork", "ProjectionHead", "info_nce", "moby_contrastive_loss"):
        assert getattr(moby, name) is not None
    for name in ("cosine_momentum", "momentum_update", "enqueue", "frozen_running_stats"):
        assert getattr(moby, name) is not None
    assert moby_al_plugin.MoBYNetwork is moby.MoBYNetwork


def test_a_run_folder_of_release_0_1_0_resumes(tmp_path):
    # written by `moby-al run` of 0.1.0 (one cycle of mobyv2al on the digits);
    # its pickled state names moby_al_plugin.estimator, .moby, .backbones, .core
    folder = tmp_path / "run"
    shutil.copytree(RELEASE_0_1_0_RUN, folder)
    for packed in (folder / "state").glob("*.pkl.gz"):
        packed.with_suffix("").write_bytes(gzip.decompress(packed.read_bytes()))
        packed.unlink()
    state = (folder / "state" / "mobyv2al-trial0.pkl").read_bytes()
    assert b"moby_al_plugin.estimator" in state and b"moby_al_plugin.moby" in state
    before = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    assert [r["cycle"] for r in before] == [0, 1]

    stored = json.loads((folder / "config.json").read_text())
    config = ExperimentConfig.from_dict({**stored, "cycles": 2})
    with warnings.catch_warnings():  # the old paths warn once per process (tested above)
        warnings.simplefilter("ignore", DeprecationWarning)
        records = run_experiment(config, folder, resume=True, log=None, plot=False, n_threads=1)

    assert [r["cycle"] for r in records] == [0, 1, 2]
    # the first two cycles are read back, not trained again
    assert [r["accuracy"] for r in records[:2]] == [r["accuracy"] for r in before]
    assert records[2]["n_labeled"] == records[1]["n_labeled"] + config.query_size
