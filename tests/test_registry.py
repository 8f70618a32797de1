"""The strategy registry: one entry per strategy, read by every user of a name."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from modAL.uncertainty import margin_sampling

from moby_al_plugin import MoBYALError, coreset_sampling, random_sampling
from moby_al_plugin.selection.registry import (
    NETWORKS,
    STRATEGIES,
    StrategyEntry,
    get_strategy,
    strategy_names,
)


def test_entries_are_named_by_their_keys_and_train_a_known_network():
    assert len(STRATEGIES) == 16
    for name, entry in STRATEGIES.items():
        assert entry.name == name
        assert entry.network in NETWORKS
        assert entry.description


def test_query_binds_the_entry_options():
    kcenter = STRATEGIES["kcenter_pretrained"].query
    assert kcenter.func is coreset_sampling
    assert kcenter.keywords == {"normalize": True, "subset_size": None}
    assert STRATEGIES["coreset"].query.keywords == {"normalize": False, "subset_size": None}
    # modAL's own strategies are imported by path, unchanged
    assert STRATEGIES["margin_pretrained"].query is margin_sampling
    assert STRATEGIES["random"].query is random_sampling


def test_every_strategy_searches_the_candidates_it_is_given():
    # the runner and the labelling round draw the candidates themselves; a
    # strategy that cut them again (to its default 10,000) would override them
    for name, entry in STRATEGIES.items():
        target = getattr(entry.query, "func", entry.query)
        if "subset_size" in inspect.signature(target).parameters:
            assert entry.query.keywords.get("subset_size", "unset") is None, name


def test_seeded_entries_are_those_whose_query_takes_a_seed_that_matters():
    for name, entry in STRATEGIES.items():
        target = getattr(entry.query, "func", entry.query)
        takes_seed = "random_state" in inspect.signature(target).parameters
        if entry.seeded:
            assert takes_seed, name
    # modAL's uncertainty strategies take no seed; k-center draws its first
    # centre when there is no label, so it takes one
    assert not STRATEGIES["margin"].seeded
    assert STRATEGIES["coreset"].seeded and STRATEGIES["mobyv2al"].seeded
    for name in ("typiclust", "maxherding", "budget_aware", "kcenter_pretrained", "random"):
        assert STRATEGIES[name].seeded, name
    # BADGE draws its k-means++ seeds after the first
    for name in ("badge", "badge_pretrained"):
        assert STRATEGIES[name].seeded, name


@pytest.mark.parametrize("name", strategy_names(cold_start=True))
def test_a_cold_start_pick_does_not_depend_on_numpys_global_state(name):
    # the runner passes random_state only to seeded entries: a cold pick that
    # drew from the global state would differ between fresh processes
    from .conftest import small_net

    entry = STRATEGIES[name]
    X = np.random.default_rng(0).random((40, 1, 8, 8)).astype(np.float32)
    classifier = small_net() if entry.network == "moby" else None
    options = {"random_state": 0} if entry.seeded else {}
    if name == "budget_aware":
        options["n_classes"] = 3
    picks = []
    for global_seed in (1, 2):
        np.random.seed(global_seed)
        picked, _ = entry.query(classifier, X, n_instances=4, **options)
        picks.append(np.asarray(picked).tolist())
    assert picks[0] == picks[1], name


def test_cold_start_means_a_pick_without_a_trained_classifier():
    X = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    for name in strategy_names(cold_start=True):
        entry = STRATEGIES[name]
        if entry.network == "moby":
            continue  # mobyv2al insists on a MoBYClassifier, fitted or not
        options = {"random_state": 0} if entry.seeded else {}
        if name == "budget_aware":
            options["n_classes"] = 3
        picks, _ = entry.query(None, X, n_instances=3, **options)
        assert len(set(picks.tolist())) == 3, name
    assert set(strategy_names(cold_start=False)) == {
        "entropy",
        "margin",
        "least_confidence",
        "uncertainty_batch",
        "badge",
        "margin_pretrained",
        "badge_pretrained",
    }


def test_names_by_network():
    assert strategy_names(network="moby") == ("mobyv2al", "moby_random")
    assert strategy_names(network="pretrained", cold_start=False) == (
        "margin_pretrained",
        "badge_pretrained",
    )
    assert len(strategy_names()) == len(STRATEGIES)


def test_unknown_names_are_refused_with_the_valid_ones():
    with pytest.raises(MoBYALError, match="unknown strategy 'typiclus'.*typiclust"):
        get_strategy("typiclus")
    assert get_strategy("typiclust") is STRATEGIES["typiclust"]
    with pytest.raises(ValueError, match="network"):
        StrategyEntry(
            "x", "moby_al_plugin.selection.strategies:random_sampling", "gpu", True, True, "x"
        )


def test_configuration_command_and_labelling_read_the_registry():
    from moby_al_plugin.cli import build_parser
    from moby_al_plugin.experiments import STRATEGY_NAMES
    from moby_al_plugin.labelling import LABEL_STRATEGIES

    assert STRATEGY_NAMES == tuple(STRATEGIES)
    assert set(LABEL_STRATEGIES) == {
        "random",
        "margin",
        "kcenter",
        "typiclust",
        "maxherding",
        "budget_aware",
        "badge",
    }
    assert LABEL_STRATEGIES["kcenter"] is STRATEGIES["kcenter_pretrained"]
    helptext = build_parser()._subparsers._group_actions[0].choices["compare"].format_help()
    for entry in STRATEGIES.values():
        assert entry.name in helptext and entry.description in helptext
