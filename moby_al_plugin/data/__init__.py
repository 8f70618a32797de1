"""Data: the datasets, their loaders, image pools and the first labelled rows.

Named datasets and their loaders (:mod:`.datasets`, :mod:`.loaders`), images
read from files (:mod:`.image_reading`, :mod:`.image_dataset`), pools larger
than memory (:mod:`.pools`) and the draws from a pool: the candidate subset
and the first labelled rows (:mod:`.pool_sampling`).
"""
