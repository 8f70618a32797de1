"""The application built on the library: experiments, results, plots, the command.

:func:`run_experiment` runs reproducible, resumable active-learning
experiments described by an :class:`ExperimentConfig`; :mod:`.results`
writes and summarises their records, :func:`plot_learning_curves` draws
them, and :mod:`.cli` is the ``moby-al`` command. Nothing in
:mod:`moby_al_plugin` (the library) imports this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes

# public name -> the submodule that defines it; imported on first use (PEP 562)
_SOURCES = {
    "ExperimentConfig": "config",
    "ExperimentError": "config",
    "STRATEGY_NAMES": "config",
    "run_experiment": "runner",
    "load_experiment": "runner",
    "plot_learning_curves": "plots",
    "PickHistory": "pick_history",
    "FeatureProjection": "projection",
    "plot_gallery": "pictures",
    "plot_feature_map": "pictures",
    "plot_class_histogram": "pictures",
    "draw_run_pictures": "pictures",
    "summarize": "results",
    "format_table": "results",
    "learning_curve_area": "results",
    "labels_to_reach": "results",
    "class_histograms": "results",
    "read_records": "results",
    "write_records": "results",
}

__all__ = [
    "ExperimentConfig",
    "ExperimentError",
    "STRATEGY_NAMES",
    "run_experiment",
    "load_experiment",
    "plot_learning_curves",
    "PickHistory",
    "FeatureProjection",
    "plot_gallery",
    "plot_feature_map",
    "plot_class_histogram",
    "draw_run_pictures",
    "summarize",
    "format_table",
    "learning_curve_area",
    "labels_to_reach",
    "class_histograms",
    "read_records",
    "write_records",
]


__getattr__, __dir__ = lazy_attributes(__name__, _SOURCES, globals())


if TYPE_CHECKING:
    from .config import STRATEGY_NAMES, ExperimentConfig, ExperimentError
    from .pick_history import PickHistory
    from .pictures import (
        draw_run_pictures,
        plot_class_histogram,
        plot_feature_map,
        plot_gallery,
    )
    from .plots import plot_learning_curves
    from .projection import FeatureProjection
    from .results import (
        class_histograms,
        format_table,
        labels_to_reach,
        learning_curve_area,
        read_records,
        summarize,
        write_records,
    )
    from .runner import load_experiment, run_experiment
