"""Result files and summaries, against hand-computed values."""

from __future__ import annotations

import csv

import pytest

from moby_al_plugin.experiments.results import (
    atomic_write_text,
    format_table,
    learning_curve_area,
    read_records,
    summarize,
    write_records,
)


def _rec(strategy, trial, cycle, n, acc):
    return {
        "strategy": strategy,
        "trial": trial,
        "seed": trial,
        "cycle": cycle,
        "n_labeled": n,
        "accuracy": acc,
        "train_seconds": 1.0,
        "query_seconds": 0.5 * cycle,
        "queried": list(range(cycle)),
    }


RECORDS = [
    _rec("random", 0, 0, 100, 0.5),
    _rec("random", 0, 1, 200, 0.7),
    _rec("random", 1, 0, 100, 0.7),
    _rec("random", 1, 1, 200, 0.9),
    _rec("mobyv2al", 0, 0, 100, 0.6),
    _rec("mobyv2al", 0, 1, 200, 0.8),
]


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_records_round_trip_and_csv(tmp_path):
    write_records(tmp_path, RECORDS)
    back = read_records(tmp_path)
    assert len(back) == 6 and back[0]["strategy"] == "mobyv2al"
    assert {tuple(r["queried"]) for r in back} == {(), (0,)}
    with open(tmp_path / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0].keys() >= {"strategy", "n_labeled", "accuracy", "train_seconds"}
    assert float(rows[-1]["accuracy"]) == 0.9


def test_read_records_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="results.jsonl"):
        read_records(tmp_path)
    (tmp_path / "results.jsonl").write_text('{"a": 1}\n{broken\n')
    with pytest.raises(ValueError, match="line 2"):
        read_records(tmp_path)


def test_learning_curve_area_hand_computed():
    # trapezoids: (100->200: (0.5+0.7)/2*100=60) + (200->400: (0.7+0.8)/2*200=150) over 300
    assert learning_curve_area([100, 200, 400], [0.5, 0.7, 0.8]) == pytest.approx(210 / 300)
    assert learning_curve_area([100], [0.4]) == pytest.approx(0.4)


def test_summarize_mean_std_auc():
    summary = summarize(RECORDS)
    random = summary["random"]
    assert random["n_labeled"] == [100, 200]
    assert random["mean"] == pytest.approx([0.6, 0.8])
    assert random["std"] == pytest.approx([0.1, 0.1])
    assert random["auc_mean"] == pytest.approx(0.7)  # trial AUCs 0.6 and 0.8
    assert random["auc_std"] == pytest.approx(0.1)
    assert random["query_seconds"] == pytest.approx(0.5)
    assert summary["mobyv2al"]["std"] == [0.0, 0.0]


def test_summarize_keeps_runs_of_other_seeds_apart():
    # two runs joined by --summarize: each numbers its only trial 0, the seeds differ
    records = [dict(r, trial=0) for r in RECORDS if r["strategy"] == "random"]
    random = summarize(records)["random"]
    assert random["trials"] == [2, 2]
    assert random["auc_mean"] == pytest.approx(0.7)  # seed AUCs 0.6 and 0.8, not one mixed curve
    assert random["auc_std"] == pytest.approx(0.1)


def test_format_table_lists_strategies_and_percentages():
    table = format_table(summarize(RECORDS))
    assert "mobyv2al" in table and "random" in table
    assert "60.0±10.0" in table and "80.0±10.0" in table
    assert format_table({}) == "(no results)"


def test_format_table_markdown_hand_written():
    table = format_table(summarize(RECORDS), markdown=True)
    assert table.splitlines()[:4] == [
        "| strategy | 100 | 200 | AUC | train s | query s |",
        "| --- | --- | --- | --- | --- | --- |",
        "| random | 60.0±10.0 | 80.0±10.0 | 70.0 | 1.0 | 0.50 |",
        "| mobyv2al | 60.0 | 80.0 | 70.0 | 1.0 | 0.50 |",
    ]


def test_labels_to_reach_interpolates_between_points():
    from moby_al_plugin.experiments import labels_to_reach

    assert labels_to_reach([200, 400, 600], [0.70, 0.80, 0.90], 0.85) == pytest.approx(500.0)
    assert labels_to_reach([200, 400], [0.70, 0.80], 0.70) == 200.0  # reached at once
    assert labels_to_reach([200, 400], [0.70, 0.80], 0.81) is None
    # the first crossing counts, not a later dip and recovery
    assert labels_to_reach([100, 200, 300, 400], [0.5, 0.9, 0.6, 0.95], 0.7) == pytest.approx(150.0)


def test_class_histograms_sum_picks_over_cycles_and_average_trials():
    from moby_al_plugin.experiments import class_histograms

    def record(trial, cycle, counts):
        return {
            "strategy": "s",
            "trial": trial,
            "cycle": cycle,
            "queried_classes": counts,
            "classes": ["a", "b"],
        }

    records = [
        record(0, 0, [2, 0]),
        record(0, 1, [1, 1]),
        record(0, 2, [0, 2]),
        record(1, 0, [1, 1]),
        record(1, 1, [2, 0]),
        {"strategy": "old", "trial": 0, "cycle": 0},  # written before class counts existed
    ]
    histograms = class_histograms(records)
    assert set(histograms) == {"s"}
    assert histograms["s"]["initial"] == [1.5, 0.5]
    # trial 0 queried [1, 3] in all, trial 1 [2, 0]
    assert histograms["s"]["queried"] == [1.5, 1.5]
    assert histograms["s"]["classes"] == ["a", "b"]


def test_class_histograms_average_runs_of_other_seeds():
    from moby_al_plugin.experiments import class_histograms

    # two runs joined by --summarize: both number their trial 0, seeds 0 and 1
    records = [
        {
            "strategy": "s",
            "trial": 0,
            "seed": seed,
            "cycle": 0,
            "queried_classes": counts,
            "classes": ["a", "b"],
        }
        for seed, counts in ((0, [2, 0]), (1, [0, 2]))
    ]
    assert class_histograms(records)["s"]["initial"] == [1.0, 1.0]  # a mean, not the sum [2, 2]


def test_median_stop_counts_never_as_later_than_any_stop():
    from moby_al_plugin.experiments.results import median_stop

    assert median_stop([]) is None
    assert median_stop([400]) == 400
    assert median_stop([400, 600]) == 500
    assert median_stop([800, None, 400]) == 800  # 400, 800, never: the middle is 800
    assert median_stop([400, None]) is None  # half never stopped
    assert median_stop([None, None, 200]) is None
