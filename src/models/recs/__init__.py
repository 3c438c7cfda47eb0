"""recs: a sequential, repeat-aware recommender (SASRec-style transformer + replenishment).

See :mod:`ppx.models.recs.train` for the recipe and :mod:`ppx.models.recs.pyfunc` for
the served interface.
"""
