"""The public API: every exported name resolves, and the library stands alone."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
import time

import moby_al_plugin
import moby_al_plugin.experiments


def test_every_public_name_resolves():
    for package in (moby_al_plugin, moby_al_plugin.experiments):
        for name in package.__all__:
            assert getattr(package, name) is not None, name
        assert len(set(package.__all__)) == len(package.__all__)


def test_experiment_names_left_the_library_namespace():
    for name in ("run_experiment", "ExperimentConfig", "plot_learning_curves"):
        assert not hasattr(moby_al_plugin, name), name
        assert hasattr(moby_al_plugin.experiments, name), name


def _imported_by(modules: list[str]) -> list[str]:
    """The application modules and plotting/serving packages a fresh interpreter
    holds after importing ``modules`` (this process has imported them all)."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith("
        "('moby_al_plugin.experiments', 'moby_al_plugin.labelling', 'moby_al_plugin.cli', "
        "'matplotlib', 'flask')))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _library_modules(family: str = "") -> list[str]:
    """Every module of the library (or of one of its families), not the applications."""
    applications = ("experiments", "labelling", "cli", "__main__")
    return sorted(
        m.name
        for m in pkgutil.walk_packages(moby_al_plugin.__path__, "moby_al_plugin.")
        if m.name.split(".")[1] not in applications
        and m.name.startswith(f"moby_al_plugin.{family}")
    )


def _package_modules_imported_by(modules: list[str]) -> list[str]:
    """The package's modules a fresh interpreter holds after importing ``modules``."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('moby_al_plugin.'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_each_family_imports_only_the_layers_below_it():
    # selection reads estimators through their methods; data and the network
    # know nothing of selection, training or the pool's labels
    estimators = ("classifier", "encoder", "skorch_base", "learner", "callbacks")
    rules = {
        "selection": estimators + ("network", "semi_supervised", "augment"),
        "data": estimators + ("network", "semi_supervised", "selection", "augment"),
        "network": estimators + ("data", "semi_supervised", "selection"),
        "semi_supervised": estimators + ("network", "data", "augment"),
    }
    for family, forbidden in rules.items():
        modules = _library_modules(family + ".")
        assert modules, family
        held = _package_modules_imported_by(modules)
        assert {m for m in held if m.startswith(f"moby_al_plugin.{family}.")} >= set(modules)
        wrong = [m for m in held if m.split(".")[1] in forbidden]
        assert wrong == [], (family, wrong)


def test_library_imports_no_application_module_and_no_matplotlib():
    # the application: the experiments and the labelling command
    library = _library_modules()
    assert (
        "moby_al_plugin.selection.kcenter" in library and "moby_al_plugin.data.datasets" in library
    )
    assert _imported_by(library) == []


def test_the_applications_do_not_import_each_other():
    # the command that wires both sits above them, in moby_al_plugin.cli
    experiments = _imported_by(["moby_al_plugin.experiments"])
    assert "moby_al_plugin.experiments" in experiments
    assert not [m for m in experiments if m.startswith(("moby_al_plugin.labelling", "flask"))]
    assert "moby_al_plugin.cli" not in experiments
    labelling = _imported_by(["moby_al_plugin.labelling"])
    assert "moby_al_plugin.labelling" in labelling
    assert not [m for m in labelling if m.startswith("moby_al_plugin.experiments")]
    assert "moby_al_plugin.cli" not in labelling


def test_command_help_answers_quickly():
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "moby_al_plugin", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "usage: moby-al" in out.stdout and "--debug" in out.stdout
    # torch and scikit-learn are imported only by the commands that train; a loaded
    # machine may still be slow to start Python
    assert time.perf_counter() - started < 30


def test_user_facing_errors_are_moby_al_errors(tmp_path):
    import numpy as np
    import pytest

    from moby_al_plugin import DataNotFoundError, MoBYALError, load_dataset, load_fashion_mnist
    from moby_al_plugin._validation import check_images, check_labels, check_n_instances
    from moby_al_plugin.experiments import ExperimentConfig

    for bad in (
        lambda: check_images(np.zeros(3)),
        lambda: check_labels(np.zeros(3), 4),
        lambda: check_n_instances(5, 2),
        lambda: load_dataset("no-such-data"),
        lambda: ExperimentConfig(cycles=-1).validate(),
    ):
        with pytest.raises(MoBYALError):
            bad()
    with pytest.raises(DataNotFoundError) as missing:
        load_fashion_mnist(tmp_path / "absent")
    assert isinstance(missing.value, FileNotFoundError)  # callers' except clauses still work


def _modules_after(code: str) -> set[str]:
    """The top-level packages a fresh interpreter holds after running ``code``."""
    script = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_the_package_resolves_its_names_on_first_use():
    modules = _modules_after("import moby_al_plugin")
    assert "torch" not in modules and "moby_al_plugin.classifier" not in modules
    assert set(moby_al_plugin.__all__) <= set(dir(moby_al_plugin))
    modules = _modules_after("from moby_al_plugin import MoBYClassifier")
    assert "torch" in modules and "moby_al_plugin.classifier" in modules
    assert moby_al_plugin.MoBYClassifier.__module__ == "moby_al_plugin.classifier"


def test_the_command_parser_does_not_import_torch():
    modules = _modules_after(
        "import moby_al_plugin.cli\n"
        "moby_al_plugin.cli.build_parser().parse_args(['label', 'status'])"
    )
    assert "moby_al_plugin.cli" in modules
    heavy = {"torch", "skorch", "sklearn", "matplotlib", "flask"} & modules
    assert not heavy, heavy


def test_label_bookkeeping_does_not_import_torch(tmp_path, digit_image_folder):
    folder, truth = digit_image_folder
    work = tmp_path / "work"
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\ndigit-001.png,{}\n".format(truth["digit-001.png"]))
    commands = [
        ["label", "init", "--workdir", str(work), "--images", str(folder), "--classes",
         ",".join(str(d) for d in range(10))],
        ["label", "status", "--workdir", str(work)],
        ["label", "import", "--workdir", str(work), str(labels)],
        ["label", "export", "--workdir", str(work), "--output", str(tmp_path / "out.csv")],
    ]  # fmt: skip
    modules = _modules_after(
        "from moby_al_plugin.cli import main\n"
        f"for argv in {commands!r}:\n"
        "    assert main(argv) == 0, argv"
    )
    assert "moby_al_plugin.labelling.store" in modules
    assert not {"torch", "skorch"} & modules
    assert (tmp_path / "out.csv").read_text().count("digit-001.png") == 1
