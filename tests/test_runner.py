"""The experiment runner end to end on real data."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from moby_al_plugin import MoBYALError
from moby_al_plugin.experiments import (
    ExperimentConfig,
    ExperimentError,
    load_experiment,
    run_experiment,
)
from moby_al_plugin.hardware import resolve_precision
from moby_al_plugin.selection.registry import STRATEGIES

FASHION_ROOT = Path("/usr/share/datasets/fashion-mnist")

TINY = dict(
    dataset="digits",
    strategies=("mobyv2al", "random"),
    initial_size=30,
    query_size=20,
    cycles=2,
    epochs=2,
    batch_size=16,
    queue_size=64,
    subset_size=150,
    pool_size=300,
    test_size=150,
    min_samples_per_epoch=64,
    train_samples=None,
    pretrain_epochs=1,
)


def _deterministic(records):
    return [
        (r["strategy"], r["trial"], r["cycle"], r["n_labeled"], r["accuracy"], r["queried"])
        for r in records
    ]


def test_experiment_errors_are_user_facing_errors():
    assert issubclass(ExperimentError, MoBYALError) and issubclass(ExperimentError, ValueError)


def test_digits_end_to_end(tmp_path):
    config = ExperimentConfig(**TINY, seeds=(0, 1))
    records = run_experiment(config, tmp_path / "out", progress=False, log=None)
    assert len(records) == 2 * 2 * 3
    for r in records:
        assert r["n_labeled"] == 30 + 20 * r["cycle"]
        assert 0.0 <= r["accuracy"] <= 1.0
        # cycle 0 records the initial set, later cycles their picks
        assert len(r["queried"]) == (20 if r["cycle"] else 30)
        assert len(set(r["queried"])) == len(r["queried"])
        assert sum(r["queried_classes"]) == len(r["queried"])
        assert r["classes"] == list(range(10))
    out = tmp_path / "out"
    for name in [
        "config.json",
        "results.jsonl",
        "results.csv",
        "learning_curves.png",
        "learning_curves.svg",
    ]:
        assert (out / name).is_file(), name
    stored, back = load_experiment(out)
    assert stored == config and len(back) == len(records)
    # nothing queried twice within a run
    for strategy in config.strategies:
        for trial in (0, 1):
            picked = [
                i
                for r in records
                if (r["strategy"], r["trial"]) == (strategy, trial)
                for i in r["queried"]
            ]
            assert len(picked) == len(set(picked)) == 30 + 40


def test_identical_seeds_give_identical_results(tmp_path):
    config = ExperimentConfig(**{**TINY, "cycles": 1})
    a = run_experiment(config, tmp_path / "a", progress=False, log=None, plot=False)
    b = run_experiment(config, tmp_path / "b", progress=False, log=None, plot=False)
    assert _deterministic(a) == _deterministic(b)


def test_all_strategies_run(tmp_path):
    config = ExperimentConfig(**{**TINY, "strategies": tuple(STRATEGIES), "cycles": 1, "epochs": 1})
    records = run_experiment(config, tmp_path / "all", progress=False, log=None, plot=False)
    assert {r["strategy"] for r in records} == set(STRATEGIES)
    # every strategy starts from the same initial set, and nets of one kind agree at cycle 0
    first = {r["strategy"]: r["accuracy"] for r in records if r["cycle"] == 0}
    assert first["random"] == first["coreset"] == first["margin"]
    assert first["mobyv2al"] == first["moby_random"]


def test_cycle_zero_is_trained_once_per_network_kind(tmp_path, monkeypatch):
    from moby_al_plugin.classifier import MoBYClassifier

    fits = []
    original = MoBYClassifier.fit

    def counting_fit(self, X, y, X_unlabeled=None, **kwargs):
        fits.append((len(y), self.contrastive_weight > 0))
        return original(self, X, y, X_unlabeled=X_unlabeled, **kwargs)

    monkeypatch.setattr(MoBYClassifier, "fit", counting_fit)
    config = ExperimentConfig(
        **{
            **TINY,
            "strategies": ("random", "margin", "moby_random", "mobyv2al"),
            "cycles": 1,
            "epochs": 1,
        }
    )
    records = run_experiment(config, tmp_path / "shared", progress=False, log=None, plot=False)
    # one cycle-0 fit per kind, then one fit per strategy for cycle 1
    assert sorted(f for f in fits if f[0] == 30) == [(30, False), (30, True)]
    assert len([f for f in fits if f[0] == 50]) == 4
    first = {r["strategy"]: r for r in records if r["cycle"] == 0}
    assert first["random"]["train_seconds"] == first["margin"]["train_seconds"]
    assert first["mobyv2al"]["train_seconds"] == first["moby_random"]["train_seconds"]
    assert {r["strategy"] for r in first.values()} == set(config.strategies)
    state = tmp_path / "shared" / "state"
    assert (state / "cycle0-supervised-trial0.pkl").is_file()
    assert (state / "cycle0-moby-trial0.pkl").is_file()


def test_resume_after_completion_changes_nothing(tmp_path):
    config = ExperimentConfig(**{**TINY, "cycles": 1})
    first = run_experiment(config, tmp_path / "r", progress=False, log=None, plot=False)
    again = run_experiment(
        config, tmp_path / "r", resume=True, progress=False, log=None, plot=False
    )
    assert _deterministic(first) == _deterministic(again)


def test_resume_continues_an_interrupted_run(tmp_path, monkeypatch):
    import moby_al_plugin.experiments.runner as experiment

    config = ExperimentConfig(**{**TINY, "cycles": 2})
    full = run_experiment(config, tmp_path / "full", progress=False, log=None, plot=False)
    original = experiment._finish_cycle
    finished = []

    def interrupt_after_four(*args, **kwargs):
        if len(finished) == 4:
            raise KeyboardInterrupt  # as if stopped while training the fifth cycle
        original(*args, **kwargs)
        finished.append(1)

    monkeypatch.setattr(experiment, "_finish_cycle", interrupt_after_four)
    out = tmp_path / "partial"
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, out, progress=False, log=None, plot=False)
    assert len((out / "results.jsonl").read_text().splitlines()) == 4
    monkeypatch.setattr(experiment, "_finish_cycle", original)
    resumed = run_experiment(config, out, resume=True, progress=False, log=None, plot=False)
    assert _deterministic(resumed) == _deterministic(full)


def test_resume_may_raise_cycles_only(tmp_path):
    out = tmp_path / "grow"
    short = ExperimentConfig(**{**TINY, "strategies": ("random",), "cycles": 1})
    run_experiment(short, out, progress=False, log=None, plot=False)
    longer = ExperimentConfig(**{**TINY, "strategies": ("random",), "cycles": 2})
    with pytest.raises(ExperimentError, match="another configuration.*cycles"):
        run_experiment(longer, out, progress=False, log=None, plot=False)  # not without --resume
    grown = run_experiment(longer, out, resume=True, progress=False, log=None, plot=False)
    reference = run_experiment(longer, tmp_path / "ref", progress=False, log=None, plot=False)
    assert _deterministic(grown) == _deterministic(reference)
    assert load_experiment(out)[0] == longer
    fewer = ExperimentConfig(**{**TINY, "strategies": ("random",), "cycles": 1})
    with pytest.raises(ExperimentError, match="another configuration.*cycles"):
        run_experiment(fewer, out, resume=True, progress=False, log=None, plot=False)
    other = ExperimentConfig(**{**TINY, "strategies": ("random",), "cycles": 3, "epochs": 3})
    with pytest.raises(ExperimentError, match="differs in: .*epochs"):
        run_experiment(other, out, resume=True, progress=False, log=None, plot=False)


def _stopping(records):
    return [(r["strategy"], r["cycle"], r.get("stop_kappa"), r.get("stop")) for r in records]


def test_every_cycle_records_the_stopping_rule(tmp_path):
    from moby_al_plugin.experiments import format_table, summarize
    from moby_al_plugin.stopping import stable_rounds

    config = ExperimentConfig(
        **{**TINY, "strategies": ("random",), "cycles": 3},
        stop_set_size=100,
        stop_threshold=0.3,
        stop_window=1,
    )
    out = tmp_path / "stop"
    records = run_experiment(config, out, progress=False, log=None)
    records.sort(key=lambda r: r["cycle"])
    assert records[0]["stop_kappa"] is None and records[0]["stop"] is False
    kappas = [r["stop_kappa"] for r in records]
    assert all(-1.0 <= k <= 1.0 for k in kappas[1:])
    # the rule's verdict is the library's rule applied to the kappas so far
    for i, r in enumerate(records):
        assert r["stop_stable_rounds"] == stable_rounds(kappas[: i + 1], 0.3)
        assert r["stop"] == (r["stop_stable_rounds"] >= 1)
    # the digits' predictions settle quickly: kappa 0.3 is reached at some cycle
    assert any(r["stop"] for r in records)
    first = next(r["n_labeled"] for r in records if r["stop"])
    assert summarize(records)["random"]["stop_at"] == [first]
    assert "stops at" in format_table(summarize(records))
    assert "stop_kappa" in (out / "results.csv").read_text().splitlines()[0]
    # a run grown by --resume continues the kappas as if it had run straight
    grown = ExperimentConfig(**{**config.to_dict(), "cycles": 4})
    short = ExperimentConfig(**{**config.to_dict(), "cycles": 2})
    run_experiment(short, tmp_path / "grow", progress=False, log=None, plot=False)
    resumed = run_experiment(
        grown, tmp_path / "grow", resume=True, progress=False, log=None, plot=False
    )
    straight = run_experiment(grown, tmp_path / "straight", progress=False, log=None, plot=False)
    assert sorted(_stopping(resumed)) == sorted(_stopping(straight))
    assert all(r["stop_kappa"] is not None for r in resumed if r["cycle"] > 0)


def test_a_stop_set_of_zero_records_no_stopping_rule(tmp_path):
    config = ExperimentConfig(**{**TINY, "strategies": ("random",), "cycles": 1}, stop_set_size=0)
    records = run_experiment(config, tmp_path / "off", progress=False, log=None, plot=False)
    assert all("stop_kappa" not in r and "stop" not in r for r in records)


def test_resume_refuses_results_of_the_old_subsampling(tmp_path):
    config = ExperimentConfig(**{**TINY, "strategies": ("random",), "cycles": 1})
    out = tmp_path / "old"
    run_experiment(config, out, progress=False, log=None, plot=False)
    stored = json.loads((out / "config.json").read_text())
    del stored["data_version"]  # as written before the field existed
    (out / "config.json").write_text(json.dumps(stored))
    assert load_experiment(out)[0].data_version == 1
    with pytest.raises(ExperimentError, match="data_version 1"):
        run_experiment(config, out, resume=True, progress=False, log=None, plot=False)
    with pytest.raises(ExperimentError, match="data_version"):
        ExperimentConfig(**{**TINY, "data_version": 1}).validate()


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"strategies": ("mobyv2al", "bogus")}, "unknown strategy 'bogus'.*coreset"),
        ({"backbone": "nonet"}, "unknown backbone 'nonet'.*small_cnn"),
        ({"cycles": 20}, "pool holds 300"),
        ({"query_size": 0}, "query_size must be at least 1"),
        ({"subset_size": 5}, "smaller than query_size"),
        ({"seeds": (1, 1)}, "seed is listed twice"),
        ({"precision": "fp16"}, "unknown precision 'fp16'.*bf16"),
        ({"contrastive_every": 0}, "contrastive_every must be a positive integer"),
        ({"stop_threshold": 0.0}, r"stop_threshold must lie in \(0, 1\]"),
        ({"stop_window": 0}, "stop_window must be at least 1"),
        ({"stop_set_size": -1}, "stop_set_size must be >= 0"),
        (
            {"graph_pseudo_labels": 1.5, "pseudo_label_weight": 1.0},
            r"graph_pseudo_labels must be a number in \[0, 1\], got 1.5",
        ),
        ({"graph_pseudo_labels": 0.0}, "pseudo_label_mode 'labels' learns the graph's labels"),
        (
            {"pseudo_label_thresholds": "flexmatch"},
            "pseudo_label_mode='labels' .* needs 'fixed'",
        ),
        ({"pseudo_label_mode": "both"}, "unknown pseudo_label_mode 'both'"),
    ],
)
def test_bad_configurations(tmp_path, changes, match):
    config = ExperimentConfig(**{**TINY, **changes})
    with pytest.raises(ExperimentError, match=match):
        run_experiment(config, tmp_path / "bad", progress=False, log=None)
    assert not (tmp_path / "bad" / "state").exists()


def test_a_config_without_precision_ran_in_float32_and_the_log_names_threads(tmp_path):
    config = ExperimentConfig(**{**TINY, "strategies": ("random",), "cycles": 0})
    out, lines = tmp_path / "run", []
    run_experiment(config, out, progress=False, log=lines.append, plot=False, n_threads=1)
    assert lines[0].startswith("training on 1 torch thread of ")
    assert lines[0].endswith(resolve_precision(config.precision))
    stored = json.loads((out / "config.json").read_text())
    assert stored["precision"] == "auto"
    del stored["precision"]  # as written before the field existed
    assert ExperimentConfig.from_dict(stored).precision == "fp32"
    with pytest.raises(ValueError, match="n_threads"):
        run_experiment(config, tmp_path / "other", progress=False, log=None, n_threads=0)


def test_unknown_dataset_lists_names(tmp_path):
    with pytest.raises(ValueError, match="digits"):
        run_experiment(
            ExperimentConfig(**{**TINY, "dataset": "mnistt"}),
            tmp_path / "x",
            progress=False,
            log=None,
        )


def test_output_folder_protection(tmp_path):
    config = ExperimentConfig(**{**TINY, "cycles": 1})
    out = tmp_path / "out"
    run_experiment(config, out, progress=False, log=None, plot=False)
    before = (out / "results.jsonl").read_bytes()
    with pytest.raises(ExperimentError, match="already holds results"):
        run_experiment(config, out, progress=False, log=None)
    other = ExperimentConfig(**{**TINY, "cycles": 1, "epochs": 3})
    with pytest.raises(ExperimentError, match="another configuration.*epochs"):
        run_experiment(other, out, progress=False, log=None)
    with pytest.raises(ExperimentError, match="another configuration"):
        run_experiment(other, out, resume=True, progress=False, log=None)
    assert (out / "results.jsonl").read_bytes() == before
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(ExperimentError, match="not empty"):
        run_experiment(config, stranger, progress=False, log=None)
    assert (stranger / "notes.txt").read_text() == "mine"
    json.loads((out / "config.json").read_text())


@pytest.mark.skipif(not FASHION_ROOT.is_dir(), reason="dataset-fashion-mnist is not installed")
def test_fashion_mnist_subset_end_to_end(tmp_path):
    config = ExperimentConfig(
        dataset="fashion-mnist",
        strategies=("mobyv2al", "coreset"),
        initial_size=40,
        query_size=20,
        cycles=1,
        epochs=4,
        batch_size=20,
        lr=0.05,
        queue_size=64,
        subset_size=200,
        pool_size=600,
        test_size=300,
        min_samples_per_epoch=64,
        train_samples=None,
    )
    records = run_experiment(config, tmp_path / "fm", progress=False, log=None, plot=False)
    assert len(records) == 4
    assert [r["n_labeled"] for r in records] == [40, 60, 40, 60]
    assert max(r["accuracy"] for r in records) > 0.2  # ten classes: chance is 0.1
    picked = np.concatenate([r["queried"] for r in records if r["cycle"] == 1])
    assert picked.max() < 600


def test_modal_keyword_warning_is_not_shown(tmp_path):
    import warnings

    config = ExperimentConfig(**{**TINY, "strategies": ("random",), "cycles": 1, "epochs": 1})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_experiment(config, tmp_path / "quiet", progress=False, log=None, plot=False)
    assert not [w for w in caught if "force_all_finite" in str(w.message)]


def test_pool_above_ten_thousand_is_searched_whole():
    # 10,000 points in a tight ball and 2,000 scattered far apart: k-Center-Greedy
    # over all 12,000 candidates takes every scattered point before any of the
    # ball; a strategy that cut the pool to 10,000 would miss about 330 of them
    rng = np.random.default_rng(0)
    X = np.concatenate([0.01 * rng.normal(size=(10_000, 64)), rng.normal(size=(2_000, 64))])
    X = X.astype(np.float32)
    picked, _ = STRATEGIES["coreset"].query(None, X, n_instances=2_000, X_labeled=X[:1])
    assert sorted(picked.tolist()) == list(range(10_000, 12_000))


def test_strategies_choose_their_own_initial_set_on_request(tmp_path):
    from moby_al_plugin.data.datasets import initial_labeled_indices

    config = ExperimentConfig(
        **{**TINY, "strategies": ("typiclust", "margin"), "cycles": 0, "initial_set": "strategy"}
    )
    records = run_experiment(config, tmp_path / "cold", progress=False, log=None, plot=False)
    first = {r["strategy"]: r["queried"] for r in records}
    # margin cannot pick without a fitted net: it takes the uniform random set
    from moby_al_plugin.experiments.runner import PreparedData

    data = PreparedData(config)
    shared = initial_labeled_indices(data.y, 30, random_state=0, stratified=False)
    assert first["margin"] == shared.tolist()
    assert len(first["typiclust"]) == 30 and sorted(first["typiclust"]) != sorted(first["margin"])
    state = tmp_path / "cold" / "state"
    assert (state / "cycle0-pretrained-typiclust-trial0.pkl").is_file()


def test_pretraining_runs_once_per_pool_and_is_reused(tmp_path):
    lines = []
    config = ExperimentConfig(
        **{**TINY, "strategies": ("typiclust", "random_pretrained"), "cycles": 1}
    )
    cache = tmp_path / "cache"
    run_experiment(
        config, tmp_path / "a", progress=False, log=lines.append, plot=False, cache_dir=cache
    )
    assert sum(line.startswith("pretrained small_cnn") for line in lines) == 1
    assert len(list(cache.glob("encoder-*.pt"))) == 1
    lines.clear()
    run_experiment(
        config, tmp_path / "b", progress=False, log=lines.append, plot=False, cache_dir=cache
    )
    assert not any(line.startswith("pretrained") for line in lines)


def test_pretrained_strategies_need_pretraining(tmp_path):
    config = ExperimentConfig(**{**TINY, "strategies": ("typiclust",), "pretrain_epochs": 0})
    with pytest.raises(ExperimentError, match="--pretrain-epochs"):
        run_experiment(config, tmp_path / "x", progress=False, log=None)


def test_an_encoder_pretrained_elsewhere_replaces_the_pretraining(tmp_path, digits):
    from moby_al_plugin import MoBYEncoder

    encoder_file = tmp_path / "encoder.pt"
    MoBYEncoder(backbone="small_cnn", max_epochs=1, queue_size=64, random_state=0).fit(
        digits.X_train[:300]
    ).save(encoder_file)
    lines = []
    config = ExperimentConfig(
        **{
            **TINY,
            "strategies": ("typiclust",),
            "cycles": 1,
            "pretrain_epochs": 0,  # nothing to pretrain: the file is the encoder
            "encoder": str(encoder_file),
        }
    )
    cache = tmp_path / "cache"
    records = run_experiment(
        config, tmp_path / "a", progress=False, log=lines.append, plot=False, cache_dir=cache
    )
    assert len(records) == 2 and not list(cache.glob("encoder-*.pt"))
    assert f"fine-tuning from the pretrained encoder {encoder_file}" in lines
    # an encoder of other images, and no file at all: named errors
    other = tmp_path / "other.pt"
    MoBYEncoder(backbone="small_cnn", max_epochs=1, queue_size=64, random_state=0).fit(
        np.zeros((8, 3, 16, 16), dtype=np.float32)
    ).save(other)
    with pytest.raises(ExperimentError, match=r"other.pt: images of shape"):
        run_experiment(
            dataclasses.replace(config, encoder=str(other)), tmp_path / "b", progress=False
        )
    with pytest.raises(ExperimentError, match="missing.pt: no such file"):
        run_experiment(
            dataclasses.replace(config, encoder=str(tmp_path / "missing.pt")),
            tmp_path / "c",
            progress=False,
        )
