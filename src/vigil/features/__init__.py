"""Features, declared once and computed two ways: online from profiles, offline point-in-time.

Public API (stable; the models package builds on it)::

    FEATURES: tuple[Feature, ...]          # the declared transaction-level features, column order
    FEATURE_NAMES: tuple[str, ...]         # their names
    Feature                                # name, entity, aggregation, window, categories, doc

    transaction_features(events, *, labels=None, label_delay, reference=None,
                         features=FEATURES) -> pl.DataFrame
        one row per decided completed transaction (``single`` or ``end`` event), in replay
        order: event_id, transaction_id, timestamp, card_id, user_id, terminal_id, amount,
        the features' columns (Float64, NaN = undefined), and ``label`` (Int8 0/1) when
        labels given.
    online_features(ctx, *, risk=None, features=FEATURES) -> dict[str, float]
        the same features for one event from the profiles in an engine Context, read before
        the profiles are updated (as the detectors see them); ``risk`` is a TerminalRisk.
    load_feature_file(path) -> tuple[Feature, ...]   # a feature file's declared features,
    with_declared(declared) -> tuple[Feature, ...]   # checked (FeatureFileError); the
        built-in features then those: the ``features`` of the two calls above.
    TerminalRisk(label_delay)              # the terminal fraud-rate reader of a model's delay:
        .counts(terminal_profile, now, window) / .rate(...)   reads the terminal profile's
        fraud tiles (vigil.profiles.fraud), which the engine fills: decided transactions,
        fraud labels (Engine.learn), shared by every process sharing the profiles

    USER_SNAPSHOT_FEATURES, CARD_SNAPSHOT_FEATURES: tuple[str, ...]
    user_aggregated_features(events, *, feedback=None, labels=None, label_delay,
                             reference=None, dates=None) -> pl.DataFrame
        user_id, agg_reference_date, txn_count_30d, avg_txn_amount_30d,
        standin_success_rate_90d, dispute_rate_90d, account_age_days
    card_aggregated_features(...same...) -> pl.DataFrame
        card_id, agg_reference_date, card_txn_count_30d, card_avg_txn_amount_30d,
        card_standin_success_90d, card_age_days
    user_model_training_data(events, *, feedback, labels=None, label_delay,
                             reference=None) -> pl.DataFrame
    card_model_training_data(...same...) -> pl.DataFrame
        one row per StandIn transaction with a known outcome: event_id, timestamp, user_id /
        card_id, amount, agg_reference_date (the day of the transaction), the snapshot features
        as of that date, and ``label`` (1 = standin_loss, 0 = standin_recovered).

    Snapshots(events | History, *, feedback=None, labels=None, label_delay, reference=None)
        the history built once: .table("user" | "card", dates=None), .training("user" | "card")
        give the four tables above without rebuilding it each time.
    snapshot_rows(frame) -> list[dict]    # NaN → None, for Store.save_aggregated_features
    read_event_frame(path), read_labels(path), read_feedback_frame(path), read_reference(folder)

Online cost: about 10 µs per event for all features. Features are a function of the events
alone: the engine's profiles count every event whatever it decided (a blocked transaction's
attempted amount included), so online and offline agree for every action.

Inputs: ``events`` is a frame in the engine's own event layout (what ``vigil generate`` writes
to events.parquet: kind, event_id, transaction_id, timestamp, type, phase, started_at, amount,
card_id, user_id, terminal_id, latitude, longitude, success, standin ...); ``labels`` has
``event_id`` (and optionally ``transaction_id``) of fraudulent events (labels.csv), and
optionally ``known_at``, when each label arrived (else one label delay after its event);
``feedback`` has target_event_id, label, timestamp (feedback.csv: StandIn outcomes, disputes).

Window convention (the profiles' own, see :mod:`vigil.profiles.windows`): a feature read at
event time ``t`` over window ``W`` covers the events already decided whose time ``s`` satisfies
``t - W < s <= t`` ("already decided": earlier in replay order, i.e. event-time order with ties
kept in file order). Daily snapshots for ``agg_reference_date`` D are read just before
midnight: ``D - W <= s < D``. Labels count only once known: with ``label_delay`` d a label on an
event at ``s`` is known at ``s + d``, so terminal risk at ``t`` is measured over the shifted
window ``u - W < s <= u``, ``u = floor((t - d) / h) * h`` for the window's tile ``h`` (1 hour
for 1 d, 6 hours for 7 d, a day for 30 d: :mod:`vigil.profiles.fraud`, the terminal profile's
tiles); a label arriving later than ``s + d`` (``known_at``) counts only from its arrival, as
the engine learns it from feedback.

>>> from vigil.features import FEATURE_NAMES
>>> len(FEATURE_NAMES) >= 15 and "card_txn_count_1d" in FEATURE_NAMES
True
"""

from vigil.features.declared import (
    FeatureFileError,
    load_feature_file,
    load_features,
    with_declared,
)
from vigil.features.io import read_event_frame, read_feedback_frame, read_labels, read_reference
from vigil.features.offline import transaction_features
from vigil.features.online import online_features
from vigil.features.risk import TerminalRisk
from vigil.features.snapshots import (
    CARD_SNAPSHOT_FEATURES,
    USER_SNAPSHOT_FEATURES,
    Snapshots,
    card_aggregated_features,
    card_model_training_data,
    user_aggregated_features,
    user_model_training_data,
)
from vigil.features.spec import FEATURE_NAMES, FEATURES, Feature, feature

__all__ = [
    "CARD_SNAPSHOT_FEATURES",
    "FEATURES",
    "FEATURE_NAMES",
    "USER_SNAPSHOT_FEATURES",
    "Feature",
    "FeatureFileError",
    "Snapshots",
    "TerminalRisk",
    "card_aggregated_features",
    "card_model_training_data",
    "feature",
    "load_feature_file",
    "load_features",
    "online_features",
    "read_event_frame",
    "read_feedback_frame",
    "read_labels",
    "read_reference",
    "transaction_features",
    "user_aggregated_features",
    "user_model_training_data",
    "with_declared",
]
