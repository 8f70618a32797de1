"""The application built on the library: experiments, results, plots, the command.

:func:`run_experiment` runs reproducible, resumable active-learning
experiments described by an :class:`ExperimentConfig`; :mod:`.results`
writes and summarises their records, :func:`plot_learning_curves` draws
them, and :mod:`.cli` is the ``moby-al`` command. Nothing in
:mod:`moby_al_plugin` (the library) imports this package.
"""

from .config import STRATEGY_NAMES, ExperimentConfig, ExperimentError
from .pictures import (
    FeatureProjection,
    PickHistory,
    draw_run_pictures,
    plot_class_histogram,
    plot_feature_map,
    plot_gallery,
)
from .plots import plot_learning_curves
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
