# %% [markdown]
# # Active learning, by looking at the picks
#
# Three strategies label the 8x8 digits from nothing (a cold start), 20 images per cycle for
# four cycles: random picks, TypiClust (typical images, one per cluster) and MoBYv2AL
# (k-Center-Greedy: the images farthest from everything labelled). All three train the same
# network from the same self-supervised start, so the only difference is what they ask for.
# After each step the pictures show what each strategy picked, where its picks lie, and how
# the classes fill up.
#
# `examples/teaching_active_learning.ipynb` is this script as a notebook
# (`python examples/notebook_from_script.py` rebuilds it).

# %%
import io
import os
from pathlib import Path

import numpy as np

from moby_al_plugin import (
    ActiveLearner,
    MoBYClassifier,
    MoBYEncoder,
    load_digits_dataset,
    mobyv2al_sampling,
    random_sampling,
    typiclust_sampling,
)
from moby_al_plugin.experiments import (
    FeatureProjection,
    PickHistory,
    plot_class_histogram,
    plot_feature_map,
    plot_gallery,
    plot_learning_curves,
)

# small settings: the whole notebook runs in about two minutes on two CPU cores
PER_CYCLE, CYCLES, PRETRAIN_EPOCHS, SEED = 20, 4, 15, 0
OUTPUT = Path(os.environ.get("TEACHING_OUTPUT", "teaching-pictures"))
OUTPUT.mkdir(parents=True, exist_ok=True)


def show(fig, name):
    """Save a figure (or show a saved PNG) under OUTPUT; display it in a notebook."""
    path = OUTPUT / f"{name}.png"
    if not isinstance(fig, Path):
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90)
        path.write_bytes(buffer.getvalue())
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(Image(filename=str(path)))
    else:
        print(f"wrote {path}")


# %% [markdown]
# ## The data and a self-supervised start
#
# The pool is the 1,347 training digits; their labels stay hidden and play the annotator.
# `MoBYEncoder` learns features from the images alone (no label), so a strategy can choose
# its first images before anyone has labelled anything. Look at the gallery below: it is the
# pool as the strategies see it, a digit per image with the label the annotator would give.

# %%
data = load_digits_dataset()
X_pool, y_pool = data.X_train, data.y_train
encoder = MoBYEncoder(
    max_epochs=PRETRAIN_EPOCHS, batch_size=64, queue_size=256, views="digits", random_state=SEED
).fit(X_pool)
features = encoder.transform(X_pool)
print(f"pool {X_pool.shape}, test {data.X_test.shape}, features {features.shape}")
show(
    plot_gallery(
        PickHistory({"pool": [np.arange(30)]}), X_pool, 0, labels=y_pool, title="the pool"
    ),
    "pool",
)


# %% [markdown]
# ## Three learners, one loop
#
# Each strategy gets a modAL `ActiveLearner` around the same `MoBYClassifier`, started from
# the pretrained encoder, and no labelled image. `picks` keeps, per strategy, the pool indices
# labelled in each cycle (cycle 0 is the empty initial set of a cold start).

# %%
STRATEGIES = {
    "random": random_sampling,
    "typiclust": typiclust_sampling,
    "mobyv2al": mobyv2al_sampling,
}


def make_learner(query_strategy):
    net = MoBYClassifier(
        backbone="small_cnn",
        pretrained=encoder,
        # a short schedule, so that a class sees every cycle in seconds; the library's
        # default (train_samples="auto") trains each fit to convergence, minutes on a CPU
        train_samples=2560,
        batch_size=32,
        queue_size=256,
        views="digits",
        classes=list(range(10)),
        random_state=SEED,
        verbose=0,
    )
    return ActiveLearner(estimator=net, query_strategy=query_strategy)


learners = {name: make_learner(query) for name, query in STRATEGIES.items()}
picks = {name: [[]] for name in STRATEGIES}
records = []


def run_cycle(cycle):
    """Every strategy picks PER_CYCLE images, the annotator labels them, the net retrains."""
    for name, learner in learners.items():
        labelled = np.concatenate([np.asarray(p, dtype=int) for p in picks[name]])
        unlabelled = np.setdiff1d(np.arange(len(y_pool)), labelled)
        options = {} if name == "mobyv2al" else {"random_state": SEED + cycle}
        idx, _ = learner.query(X_pool[unlabelled], n_instances=PER_CYCLE, **options)
        new = unlabelled[np.asarray(idx)]
        rest = np.setdiff1d(unlabelled, new)
        learner.teach(X_pool[new], y_pool[new], X_unlabeled=X_pool[rest])
        picks[name].append(new)
        accuracy = learner.score(data.X_test, data.y_test)
        records.append(
            {
                "strategy": name,
                "trial": 0,
                "cycle": cycle,
                "n_labeled": len(labelled) + len(new),
                "accuracy": accuracy,
                "train_seconds": 0.0,
                "query_seconds": 0.0,
            }
        )
        print(f"cycle {cycle} {name:>9}: {len(labelled) + len(new)} labels, {accuracy:.1%}")
    return PickHistory(picks, n_pool=len(y_pool))


# %% [markdown]
# ## Cycle 1: the cold start
#
# With no label at all, random picks follow the pool, TypiClust takes the most typical image
# of each cluster (clean, ordinary digits) and k-Center-Greedy starts from one random image
# and then jumps to whatever is farthest away (often odd, badly written digits). Count the
# classes in each gallery: which strategy already has every digit?

# %%
history = run_cycle(1)
show(
    plot_gallery(history, X_pool, 1, labels=y_pool, title="cycle 1: the first 20 picks"), "gallery1"
)

# %% [markdown]
# ## Where the picks lie
#
# One PCA of the encoder's features, fitted once, draws every map of this notebook, so the
# maps of all cycles and strategies can be laid side by side. Grey dots are the pool,
# coloured dots the images labelled before this cycle, black-edged diamonds this cycle's
# picks. TypiClust's picks sit in the dense middles of the clouds; k-Center-Greedy's on the
# rim.

# %%
projection = FeatureProjection("pca", random_state=SEED).fit(features)
show(plot_feature_map(history, projection, 1, labels=y_pool, title="cycle 1"), "map1")

# %% [markdown]
# ## Cycles 2 to 4
#
# Each strategy now has labels to steer by. Watch the maps: coverage (k-Center-Greedy) keeps
# filling the empty regions, typicality keeps to the regions whose clusters have the fewest
# labels, random stays indifferent.

# %%
for cycle in range(2, CYCLES + 1):
    history = run_cycle(cycle)
    show(
        plot_gallery(history, X_pool, cycle, labels=y_pool, title=f"cycle {cycle}"),
        f"gallery{cycle}",
    )
    show(
        plot_feature_map(history, projection, cycle, labels=y_pool, title=f"cycle {cycle}"),
        f"map{cycle}",
    )

# %% [markdown]
# ## How the classes fill up
#
# One row per strategy, one column per cycle: solid bars are that cycle's picks per class,
# faint bars the labels already there, the dashed line an even share. A strategy whose bars
# stay near the line gives the network every digit early; one that leaves a class empty
# costs accuracy on that class until it finds it.

# %%
show(plot_class_histogram(history, y_pool, title="labels per class, cycle by cycle"), "classes")

# %% [markdown]
# ## Learning curves
#
# Test accuracy against the number of labels. At a few labels per class, typical and
# class-balanced picks usually win; coverage catches up as the budget grows, which is why
# the package's budget-aware strategy switches from one to the other. One seed and four
# small cycles are a picture, not a measurement: `moby-al compare` runs several trials.

# %%
files = plot_learning_curves(records, OUTPUT / "learning_curves", title="digits, cold start")
show(files[0], "learning_curves")
