"""Quick modes of the benchmark scripts, so they cannot rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(script, *args, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=tmp_path,
    )


@pytest.mark.parametrize(
    "script, extra",
    [
        ("training_cost.py", []),
        # two plug-in rows, the first of them not expected to be the best
        ("label_efficiency.py", ["--strategies", "random,kcenter_pretrained,typiclust"]),
        ("paper_protocol.py", []),
        ("scale.py", ["--no-ddp"]),
    ],
)
def test_quick_mode_runs_and_writes_json(tmp_path, script, extra):
    out = tmp_path / "out"
    if script != "training_cost.py":
        extra = [*extra, "--output", str(out)]
    result = _run(script, "--quick", *extra, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    written = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("wrote ")]
    assert written, result.stdout
    payload = json.loads(Path(written[0]).read_text())
    assert payload["machine"]["cpu_count"] >= 1
    if script != "training_cost.py":
        # --output takes the summary too: the committed results/ stay untouched
        assert Path(written[0]) == tmp_path / "out.json"
    if script == "training_cost.py":
        # a ratio of two timings: above 1 on a quiet machine (two views and a
        # momentum branch), anything on a busy one, so only its presence is checked
        assert payload["step_cost"]["median_ratio"] > 0
    elif script == "label_efficiency.py":
        assert set(payload["summary"]) == {"random", "kcenter_pretrained", "typiclust"}
        # a run folder's summary can be written again from its records alone
        again = _run(script, "--summarize", str(out), tmp_path=tmp_path)
        assert again.returncode == 0, again.stderr[-3000:]
        rewritten = json.loads((tmp_path / "out.json").read_text())
        assert rewritten["summary"] == payload["summary"] and rewritten["left_out"] == []
        # another seed in another folder joins the same rows as a second trial
        seed1 = tmp_path / "seed1"
        more = _run(
            script,
            "--quick",
            "--strategies",
            "random",
            "--seeds",
            "1",
            "--output",
            str(seed1),
            tmp_path=tmp_path,
        )
        assert more.returncode == 0, more.stderr[-3000:]
        both = tmp_path / "both.json"
        joined = _run(
            script, "--summarize", f"{out},{seed1}", "--output", str(both), tmp_path=tmp_path
        )
        assert joined.returncode == 0, joined.stderr[-3000:]
        merged = json.loads(both.read_text())
        assert merged["config"]["seeds"] == [0, 1]
        assert merged["summary"]["random"]["trials"] == [2, 2]
        alone = json.loads((tmp_path / "seed1.json").read_text())["summary"]["random"]["mean"]
        first = payload["summary"]["random"]["mean"]
        assert merged["summary"]["random"]["mean"] == pytest.approx(
            [(a + b) / 2 for a, b in zip(first, alone)], abs=1e-4
        )
        # seeds of one trial only once; rows another folder lacks stay one-trial or are left out
        assert set(merged["summary"]) | set(merged["left_out"]) == set(payload["summary"])
        repeated = _run(script, "--summarize", f"{out},{out}", tmp_path=tmp_path)
        assert repeated.returncode != 0 and "repeats seeds" in repeated.stderr
        # the best plug-in row is the one of largest area, whatever its place in the table
        auc = {
            name: payload["summary"][name]["auc_mean"]
            for name in ("kcenter_pretrained", "typiclust")
        }
        assert auc["kcenter_pretrained"] != auc["typiclust"]
        assert payload["targets"]["best_plug_in"] == max(auc, key=auc.get)
        histogram = payload["class_histograms"]["typiclust"]
        assert sum(histogram["initial"]) == 30 and sum(histogram["queried"]) == 20
    elif script == "scale.py":
        stages = {row["stage"]: row for row in payload["stages"]}
        assert list(stages) == [
            "imports",
            "make-pool",
            "pretrain",
            "features",
            "kcenter",
            "typiclust",
        ]
        assert all(row["peak_rss_mib"] > 0 and row["seconds"] > 0 for row in stages.values())
        # the stage's own memory, apart from the memmap pages it touched
        assert all(0 < row["peak_anon_mib"] <= row["peak_rss_mib"] for row in stages.values())
        assert (
            stages["features"]["shape"] == [5000, 128] and stages["features"]["dtype"] == "float16"
        )
        assert stages["kcenter"]["picked"] == stages["typiclust"]["picked"] == 20
    else:
        assert "mobyv2al" in payload["summary"]


def test_label_efficiency_targets_against_hand_computed_gaps(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from label_efficiency import _targets

    def curve(*accuracies):
        n = [200, 400, 600][: len(accuracies)]
        return {"n_labeled": n, "mean": list(accuracies), "auc_mean": sum(accuracies) / len(n)}

    # three plug-in rows; the best (typiclust) is neither the first nor the last of them
    summary = {
        "kcenter_pretrained": curve(0.50, 0.60, 0.70),
        "typiclust": curve(0.70, 0.80, 0.90),
        "random": curve(0.60, 0.78, 0.85),
        "random_pretrained": curve(0.65, 0.81, 0.80),
        "maxherding_cold": curve(0.68, 0.79, 0.88),
    }
    checks = _targets(summary)
    assert checks["best_plug_in"] == "typiclust" and checks["best_auc_of_all"]
    assert checks["ahead_of_all_at"] == {200: True, 400: False, 600: True}
    assert checks["points_over_random_at"] == {200: 10.0, 400: 2.0, 600: 5.0}
    assert checks["points_over_random_pretrained_at"] == {200: 5.0, 400: -1.0, 600: 10.0}
    # random ends at 85 %: typiclust gets there between 400 (80 %) and 600 (90 %)
    reach = checks["labels_to_reach_random_final"]
    assert reach["typiclust"] == pytest.approx(500.0) and reach["random"] == 600.0
    assert reach["kcenter_pretrained"] is None
    assert reach["maxherding_cold"] == pytest.approx(400 + 200 * 6 / 9)
    # the last plug-in row wins once its area is the largest; the first when it is
    summary["maxherding_cold"] = curve(0.72, 0.82, 0.91)
    assert _targets(summary)["best_plug_in"] == "maxherding_cold"
    summary["kcenter_pretrained"] = curve(0.75, 0.85, 0.95)
    assert _targets(summary)["best_plug_in"] == "kcenter_pretrained"
    # the area decides, not the first budget (budget_aware) or the last (mobyv2al)
    assert (
        _targets(
            {
                "budget_aware": curve(0.80, 0.60, 0.60),
                "typiclust": curve(0.70, 0.85, 0.80),
                "mobyv2al": curve(0.50, 0.60, 0.95),
            }
        )["best_plug_in"]
        == "typiclust"
    )
    # rows that are not plug-ins never win, however large their area
    assert (
        _targets({"random": curve(0.9), "margin_pretrained": curve(0.95), "typiclust": curve(0.5)})[
            "best_plug_in"
        ]
        == "typiclust"
    )
    assert _targets({"random": curve(0.5)}) == {
        "random_final_accuracy": 50.0,
        "labels_to_reach_random_final": {"random": 200.0},
    }


def test_kcenter_speed_quick(tmp_path):
    output = tmp_path / "kcenter.json"
    result = _run("kcenter_speed.py", "--quick", "--output", str(output), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    pools = [r for r in json.loads(output.read_text())["results"] if r["kind"] == "pool"]
    assert pools
    for pool in pools:
        check = pool["check"]
        # every pick is the float64 farthest point, or a float32 near-tie of it
        assert check["mismatches"] == [], check["mismatches"]
        assert check["steps"] == pool["picks"]
        assert check["equal"] + len(check["near_ties"]) == check["steps"]
        # the same picks as the authors' k-Center-Greedy, or a divergence at a near-tie
        if not pool["identical_to_reference_run"]:
            steps = [t["step"] for t in check["near_ties"]]
            assert pool["first_difference_step"] in steps, pool["first_difference_step"]
        assert pool["torch_cpu_identical"]


def test_label_loop_quick_mode_measures_the_wait_and_the_answer_rate(tmp_path):
    result = _run("label_loop.py", "--quick", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    written = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("wrote ")]
    (row,) = json.loads(Path(written[0]).read_text())["rows"]
    assert row["answers"] == 100 and row["answers_per_second"] > 0
    # 20 answers to the first batch, then 100 scripted ones: one history row each
    assert row["history_rows"] == 120
    assert row["first_next_to_first_image_s"] > 0 and row["cached_next_to_first_image_s"] > 0


def test_join_parts_suffixes_cold_rows_and_checks_targets_on_all(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import _common
    import label_efficiency

    monkeypatch.setattr(_common, "RESULTS", tmp_path)

    def part(initial_set, rows):
        summary = {
            name: {
                "n_labeled": [200, 400],
                "mean": acc,
                "std": [0.0, 0.0],
                "trials": [3, 3],
                "auc_mean": sum(acc) / 2,
                "auc_std": 0.0,
                "train_seconds": 1.0,
                "query_seconds": 0.0,
            }
            for name, acc in rows.items()
        }
        return {
            "config": {"initial_set": initial_set, "seeds": [0, 1, 2]},
            "wall_seconds": 1,
            "machine": {"date_utc": "2026-12-01"},
            "summary": summary,
            "class_histograms": {name: {"initial": [1]} for name in rows},
        }

    (tmp_path / "label_efficiency-a.json").write_text(
        json.dumps(part("random", {"random": [0.60, 0.70], "typiclust": [0.62, 0.72]}))
    )
    (tmp_path / "label_efficiency-b.json").write_text(
        json.dumps(part("strategy", {"typiclust": [0.66, 0.74], "random": [0.1, 0.1]}))
    )
    joined = label_efficiency.join_parts(["a", "b"], results=tmp_path)
    # the random row of the first part is the baseline; the cold part's copy is left out
    assert list(joined["summary"]) == ["random", "typiclust", "typiclust_cold"]
    assert joined["targets"]["best_plug_in"] == "typiclust_cold"
    assert joined["targets"]["points_over_random_at"] == {200: 6.0, 400: 4.0}
    assert (tmp_path / "label_efficiency-joined.json").is_file()


def test_join_parts_merges_rows_of_parts_at_other_budgets(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import _common
    import label_efficiency

    monkeypatch.setattr(_common, "RESULTS", tmp_path)
    for budget, acc in ((10, 0.3), (20, 0.5)):
        row = {
            "n_labeled": [budget],
            "mean": [acc],
            "std": [0.1],
            "trials": [5],
            "auc_mean": acc,
            "auc_std": 0.0,
            "train_seconds": 1.0,
            "query_seconds": 0.0,
        }
        payload = {
            "config": {"initial_set": "strategy", "seeds": [0]},
            "wall_seconds": 1,
            "machine": {"date_utc": "2026-12-01"},
            "summary": {"random": row, "typiclust": {**row, "mean": [acc + 0.1]}},
            "class_histograms": {n: {"initial": [budget]} for n in ("random", "typiclust")},
        }
        (tmp_path / f"label_efficiency-low-budget-{budget}.json").write_text(json.dumps(payload))
    joined = label_efficiency.join_parts(["low-budget-10", "low-budget-20"], results=tmp_path)
    typiclust = joined["summary"]["typiclust_cold"]
    assert typiclust["n_labeled"] == [10, 20] and typiclust["mean"] == pytest.approx([0.4, 0.6])
    assert typiclust["auc_mean"] == pytest.approx(0.5)
    assert joined["targets"]["points_over_random_at"] == {10: 10.0, 20: 10.0}
    assert joined["class_histograms"]["random"]["budgets"] == {
        "low-budget-10": [10],
        "low-budget-20": [20],
    }
    assert (tmp_path / "label_efficiency-joined-low-budget.json").is_file()


def test_gpu_check_runs_every_step_in_its_quick_mode(tmp_path):
    # on a machine without a GPU: the CPU stands in, the GPU tests are only collected
    result = _run("gpu_check.py", "--quick", "--output", str(tmp_path / "check"), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    payload = json.loads((tmp_path / "check.json").read_text())
    steps = {row["step"]: row for row in payload["steps"]}
    assert list(steps) == ["cuda-tests", "kcenter", "make-pool", "pretrain", "paper-slice"]
    assert all(row["status"] == 0 for row in steps.values()), steps
    kcenter = steps["kcenter"]["figures"]
    assert kcenter["picks"] == 1000 and kcenter["same_picks"] == 1.0
    assert (tmp_path / "check-encoder.pt").is_file() and (tmp_path / "check-paper.json").is_file()


def test_label_efficiency_finetune_contrastive_weight_reaches_the_run(tmp_path):
    out = tmp_path / "moby"
    args = ["--quick", "--variant", "recipe-cold", "--strategies", "budget_aware"]
    result = _run(
        "label_efficiency.py",
        *args,
        "--finetune-contrastive-weight",
        "0.5",
        "--output",
        str(out),
        tmp_path=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((out / "config.json").read_text())["finetune_contrastive_weight"] == 0.5
    bad = _run(
        "label_efficiency.py",
        *args,
        "--finetune-contrastive-weight",
        "-1",
        "--output",
        str(tmp_path / "bad"),
        tmp_path=tmp_path,
    )
    assert bad.returncode != 0 and "finetune_contrastive_weight" in bad.stderr


def test_moby_cost_quick_times_every_part_and_the_cheaper_settings(tmp_path):
    out = tmp_path / "cost.json"
    result = _run("moby_cost.py", "--quick", "--output", str(out), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    payload = json.loads(out.read_text())
    for precision in ("fp32", "bf16"):
        parts = payload[precision]["parts"]
        # a ratio of timings: above 1 on a quiet machine (two views, the key branch),
        # anything on a busy one; the benchmark reports it, the test checks it is there
        assert parts["joint_over_plain"] > 0
        assert sum(parts["share_of_joint"].values()) == pytest.approx(1.0, abs=0.01)
        assert {"strong view", "key branch forward, both", "backward"} <= set(
            parts["share_of_joint"]
        )
        summary = payload[precision]["fits"]["summary"]
        assert summary["plain"]["over_plain_median"] == 1.0
        assert summary["moby_u0.25_every4"]["over_plain_median"] > 0
        assert summary["graph_selftrain"]["over_plain_median"] > 0
        assert summary["graph_labels"]["over_plain_median"] > 0


def test_graph_step_quick_spreads_labels_past_the_picks(tmp_path):
    out = tmp_path / "graph.json"
    result = _run("graph_step.py", "--quick", "--output", str(out), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    payload = json.loads(out.read_text())
    rows = payload["rows"]
    assert {r["learner"] for r in rows} == {"logreg", "spreading a0.2", "spreading a0.99"}
    assert {(r["picks"], r["budget"]) for r in rows} == {
        (p, b) for p in ("random", "typiclust") for b in (10, 30)
    }

    def mean(learner, budget):
        return sum(
            r["accuracy"] for r in rows
            if r["learner"] == learner and r["budget"] == budget and r["picks"] == "random"
        ) / 2  # fmt: skip

    # measured on the digits' PCA features: 58 against 47 % at 10 random labels
    assert mean("spreading a0.2", 10) > mean("logreg", 10) + 0.05
    assert "| pca | typiclust | spreading a0.2 |" in payload["table"]


def test_graph_step_scale_times_both_searches(tmp_path):
    out = tmp_path / "scale.json"
    result = _run("graph_step.py", "--scale", "3000", "--output", str(out), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert [(r["n"], r["method"]) for r in rows] == [(3000, "exact"), (3000, "faiss")]
    assert all(r["fit_seconds"] >= 0 and r["accuracy"] > 0.5 for r in rows)


def test_stopping_table_replays_the_rule_on_recorded_kappas(tmp_path):
    from moby_al_plugin.experiments import ExperimentConfig
    from moby_al_plugin.experiments.results import write_records

    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(ExperimentConfig().to_dict()))
    kappas = [None, 0.80, 0.91, 0.96, 0.97, 0.92, 0.99]
    accuracy = [0.70, 0.75, 0.78, 0.80, 0.81, 0.82, 0.83]
    write_records(
        folder,
        [
            dict(
                strategy="margin",
                trial=0,
                seed=0,
                cycle=c,
                n_labeled=200 * (c + 1),
                accuracy=a,
                train_seconds=1.0,
                query_seconds=0.1,
                stop_kappa=k,
            )
            for c, (k, a) in enumerate(zip(kappas, accuracy))
        ],
    )
    result = _run(
        "stopping_table.py",
        str(folder),
        "--thresholds",
        "0.99,0.9",
        "--window",
        "3",
        "--output",
        str(tmp_path / "stop.json"),
        tmp_path=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    rows = {r["threshold"]: r for r in json.loads((tmp_path / "stop.json").read_text())["rows"]}
    # 0.9: cycles 2, 3, 4 reach it (0.91, 0.96, 0.97): stops at cycle 4, 1,000 labels
    assert rows[0.9]["stop_labels"] == 1000 and rows[0.9]["stop_accuracy"] == 0.81
    assert rows[0.9]["left_on_table"] == pytest.approx(0.02)
    assert rows[0.99]["stop_labels"] is None  # one kappa of 0.99 is not three
    assert "| margin | 0 |" in result.stdout and "never" in result.stdout


def test_stopping_table_noise_floor_refits_the_last_model(tmp_path):
    from moby_al_plugin.experiments import ExperimentConfig, run_experiment

    config = ExperimentConfig(
        dataset="digits",
        strategies=("random",),
        initial_size=30,
        query_size=20,
        cycles=1,
        epochs=1,
        batch_size=16,
        subset_size=150,
        pool_size=300,
        test_size=150,
        train_samples=None,
        min_samples_per_epoch=64,
        stop_set_size=50,
    )
    run_experiment(config, tmp_path / "run", progress=False, log=None, plot=False)
    result = _run(
        "stopping_table.py",
        "--noise-floor",
        str(tmp_path / "run"),
        "--strategy",
        "random",
        "--refits",
        "2",
        "--output",
        str(tmp_path / "floor.json"),
        tmp_path=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    floor = json.loads((tmp_path / "floor.json").read_text())
    assert floor["labels"] == 50 and len(floor["fit_seconds"]) == 2
    # the run's model and two refits: three pairs, each a kappa
    assert [(p["a"], p["b"]) for p in floor["pairs"]] == [
        ("the run's", "refit 1"),
        ("the run's", "refit 2"),
        ("refit 1", "refit 2"),
    ]
    assert all(-1.0 <= p["kappa"] <= 1.0 for p in floor["pairs"])
    assert "kappa refit 1 vs refit 2" in result.stdout
