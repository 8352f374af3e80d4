"""The transaction model in the engine: a detector whose reason is the model's probability.

:class:`ModelScorer` has the detector shape (``codes``, ``detect(ctx)``), so the engine treats
it as one more source of reasons: it reads the event's online features (the same definitions
the training table was built from, :mod:`vigil.features`), scores them with the compiled
model, and when the calibrated fraud probability reaches ``reason_at`` adds a
``transaction_model`` reason with that probability as its score — noisy-OR evidence like any
detector's — and the features that pushed the score up most as its detail (path
attributions, see :mod:`vigil.models.trees`). Events without features (logins, start
events without an amount) get no model reason.

:func:`model_detectors` gives the engine the promoted model (or none), so a bank without a
trained model runs exactly as before. A model that reads terminal risk gets a
:class:`~vigil.features.TerminalRisk` with the label delay it was trained with (its split gap),
which reads the terminal's profile: the profiles count every decided transaction and every
fraud label (``Engine.learn``), so the online features are those of training. A model trained
with a longer delay than the profiles keep (7 days) is refused at start, naming it.

>>> from vigil.models.linear import LinearModel
>>> from vigil.models.model import Model
>>> lm = LinearModel(["amount_z"], fill=[0.0], mean=[0.0], scale=[1.0], coef=[2.0],
...                  intercept=-4.0)
>>> scorer = ModelScorer(Model("transaction", "logreg", lm, calibration=(1.0, 0.0),
...                      version="v0001"), lambda ctx: {"amount_z": ctx}, reason_at=0.5)
>>> scorer.detect(0.5), scorer.detect(4.0)[0].code  # a stand-in for a Context
([], 'transaction_model')
>>> scorer.detect(4.0)[0].detail
'model transaction v0001: p=0.982; amount_z=4 (+8)'
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vigil.config import Settings
from vigil.domain import Reason
from vigil.models.feature_card import AMOUNT, served_features
from vigil.models.model import Model

if TYPE_CHECKING:
    from vigil.features.spec import Feature

log = logging.getLogger(__name__)
CODE = "transaction_model"
# The terminal-risk features' names begin so (label-fed: see terminal_risk).
TERMINAL_RISK_PREFIX = "terminal_fraud_rate"
_NAN = float("nan")

FeaturesOf = Callable[[Any], Mapping[str, float] | None]
RowOf = Callable[[Any], list[float] | None]


class ModelScorer:
    """Score an event's online features with a model; a reason when the probability is high.

    ``features_of(ctx)`` gives the event's features by name, or None when the event is not
    scored (a feature it lacks is read as missing: NaN, as in training). ``row_of(ctx)``, when
    given, is used instead: the same features already as a row in ``model.features`` order
    (a new list: the scorer keeps it), or None — no dictionary per event
    (:func:`transaction_row_of` is the engine's).
    """

    codes: tuple[str, ...] = (CODE,)

    def __init__(
        self,
        model: Model,
        features_of: FeaturesOf,
        *,
        reason_at: float = 0.3,
        top: int = 3,
        risk: Any = None,
        row_of: RowOf | None = None,
    ) -> None:
        self.model = model
        self.features_of = features_of
        # The label-fed terminal risk ``features_of`` reads (None: the model reads none).
        self.risk = risk
        self.reason_at = reason_at
        self.top = top
        self.names = tuple(model.features)
        self.version = f"{model.name}:{model.version or 'unsaved'}"
        self._index = {name: i for i, name in enumerate(self.names)}
        self._row_of: RowOf = row_of if row_of is not None else self._row_by_name
        self._probability = model.probability
        # Only a probability reaching reason_at becomes a reason: most events stop early.
        self._reason_probability = model.at_least(reason_at)

    def _row_by_name(self, ctx: Any) -> list[float] | None:
        values = self.features_of(ctx)
        if values is None:
            return None
        get = values.get
        return [get(name, _NAN) for name in self.names]

    def score(self, ctx: Any) -> tuple[float, list[float]] | None:
        """The probability and the feature row, or None when the event is not scored."""
        row = self._row_of(ctx)
        if row is None:
            return None
        return self._probability(row), row

    def detect(self, ctx: Any) -> list[Reason]:
        # score(), inlined: this runs on every event
        row = self._row_of(ctx)
        if row is None:
            return []
        probability = self._reason_probability(row)
        if probability is None:
            return []
        return [self._reason(row, probability)]

    def assess(self, ctx: Any) -> tuple[float | None, list[Reason]]:
        """The probability whatever it is (None when the event is not scored) and the reason
        :meth:`detect` gives: what the engine asks when a combiner weighs the probability."""
        row = self._row_of(ctx)
        if row is None:
            return None, []
        probability = self._probability(row)
        if probability < self.reason_at:
            return probability, []
        return probability, [self._reason(row, probability)]

    def _reason(self, row: list[float], probability: float) -> Reason:
        index = self._index
        top = ", ".join(
            f"{name}={row[index[name]]:.3g} ({value:+.2g})"
            for name, value in self.model.reasons(row, top=self.top)
        )
        detail = f"model {self.model.name} {self.model.version}: p={probability:.3f}"
        return Reason(code=CODE, score=round(probability, 6), detail=f"{detail}; {top}")


def registry_dir(settings: Settings) -> Path:
    """Where the registry lives: ``models.registry_dir``, else ``<data_dir>/models``."""
    return settings.models.registry_dir or settings.data_dir / "models"


def model_detectors(settings: Settings) -> list[ModelScorer]:
    """The promoted transaction model as a detector, or nothing (no model, or switched off)."""
    config = settings.models
    if not config.transaction_model:
        return []
    from vigil.models.registry import Registry

    registry = Registry(registry_dir(settings))
    version = config.transaction_version or registry.promoted("transaction")
    if version is None:
        return []
    manifest = registry.manifest("transaction", version)
    # A feature the engine cannot compute as in training is refused here, naming it: read
    # as missing on every event, it would make the served model worse than its report.
    features = served_features(manifest, config.feature_file)
    model = registry.load("transaction", version)
    risk = None
    if any(name.startswith(TERMINAL_RISK_PREFIX) for name in model.features):
        from vigil.features import TerminalRisk

        risk = TerminalRisk(label_delay=manifest["parameters"]["gap_seconds"])
    return [
        ModelScorer(
            model,
            partial(transaction_features_of, risk=risk, features=features),
            reason_at=config.reason_at,
            top=config.top_reasons,
            risk=risk,
            row_of=transaction_row_of(model.features, risk=risk, features=features),
        )
    ]


def terminal_risk(detectors: list[Any]) -> Any:
    """The label-fed :class:`~vigil.features.TerminalRisk` a detector reads (its ``risk``),
    for the engine to feed; None when none reads one."""
    for detector in detectors:
        risk = getattr(detector, "risk", None)
        if risk is not None:
            return risk
    return None


def transaction_features_of(
    ctx: Any, *, risk: Any = None, features: tuple[Feature, ...] | None = None
) -> dict[str, float] | None:
    """The online features of a completed transaction (single or end event), with its amount;
    None for logins and start events, which the transaction model does not score (the
    training table has one row per completed transaction). Terminal risk is read from
    ``risk`` (NaN without one); ``features`` are the built-in ones unless a feature file's
    are added (:func:`~vigil.models.feature_card.served_features`)."""
    phase = getattr(ctx.event, "phase", None)
    if phase is None or phase == "start" or ctx.amount_cents is None:
        return None
    online = _online()
    values = online.online_features(ctx, risk=risk, features=features or online.FEATURES)
    values[AMOUNT] = ctx.amount_cents / 100
    return values


def transaction_row_of(
    names: Sequence[str], *, risk: Any = None, features: tuple[Feature, ...] | None = None
) -> RowOf:
    """What :func:`transaction_features_of` gives, as a row in ``names`` order (a feature it
    does not give: NaN), read straight into the row."""
    online = _online()
    read = online.online_row(names, features or online.FEATURES).read
    amount_at = tuple(i for i, name in enumerate(names) if name == AMOUNT)

    def row_of(ctx: Any) -> list[float] | None:
        cents = ctx.amount_cents
        if cents is None:
            return None
        phase = getattr(ctx.event, "phase", None)
        if phase is None or phase == "start":
            return None
        row = read(ctx, risk)
        for i in amount_at:
            row[i] = cents / 100
        return row

    return row_of


@cache
def _online() -> Any:
    # Imported on first use: vigil.features reads the detectors' Context, which the engine
    # (importing this module) must finish importing first.
    from vigil.features import online

    return online


def model_versions(detectors: list[Any]) -> dict[str, str]:
    """``{model name: version}`` of the models among the detectors, for the decision record."""
    models = (getattr(d, "model", None) for d in detectors)
    return {m.name: str(m.version) for m in models if isinstance(m, Model)}
