"""Learning from the images nobody labelled.

A kNN graph of the pool (:mod:`.knn_graph`), label spreading over it as a
scikit-learn classifier (:mod:`.label_spreading`), the pseudo-label
thresholds of self-training (:mod:`.pseudo_labels`), which
:class:`moby_al_plugin.MoBYClassifier` uses, and the graph's surest labels as
its targets (:mod:`.graph_pseudo_labels`).
"""
