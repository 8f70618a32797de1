"""Selection: which pool images to label next.

The modAL query strategies (:mod:`.strategies`) and their registry by name
(:mod:`.registry`), with the pieces they are built from: the features they
select in (:mod:`.features`), k-Center-Greedy (:mod:`.kcenter`), TypiClust's
typicality (:mod:`.typicality`), MaxHerding (:mod:`.herding`) and BADGE's
gradient embeddings (:mod:`.badge`). Selection reads an estimator's features
and probabilities through its public methods and never imports the
estimators' modules.
"""
