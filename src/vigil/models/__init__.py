"""Fraud models: training, the registry, batch scores, StandIn decisions, serving in the engine.

One module per concept:

- ``split``: time-ordered train / validation / test with a label-delay gap;
- ``train``: LightGBM (default) or logistic regression on a point-in-time feature table
  (:mod:`vigil.features`), class weighting, early stopping, calibration, metrics;
- ``metrics``: card precision@k per day (ROC AUC and AP come from :mod:`vigil.evaluate`);
- ``trees`` / ``linear`` / ``model``: a trained model as served, in plain Python;
- ``registry``: versioned artefacts with manifests; promotion;
- ``scorer``: the transaction model as one more detector in the engine, with the terminal
  risk it reads (fed by the engine: every decided event, every fraud feedback);
- ``feature_card``: the declared features a model reads, as its card keeps them, and the
  check that the engine's feature file computes them as in training;
- ``standin``: the user and card scores combined with the amount, thresholds for a target;
  in the engine, ``StandinScorer`` decides StandIn transactions from the scores in memory;
- ``labels``: fraud labels as feedback in a replayed stream (benchmarks, parity tests);
- ``combiner``: the decision score, stacked on the model's probability and the reasons;
  ``stacking``: ``vigil train --target combiner`` (replay, stack, compare, store);
- ``data`` / ``pipeline``: labelled event files in, registry and tables out (``vigil train``,
  ``vigil score profiles``); ``report``: the model report; ``cli``: the commands.

Serving (``scorer``, ``model``, ``trees``, ``linear``) imports neither LightGBM nor
scikit-learn.

>>> from vigil.models.split import time_split
>>> callable(time_split)
True
"""
