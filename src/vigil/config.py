"""One settings object, read from ``vigil.toml`` and ``VIGIL_*`` environment variables.

Environment beats file; nested fields use ``__`` (``VIGIL_POLICY__BLOCK_AT=0.9``).

>>> Settings(database_url="sqlite:///x.db").policy.block_at
0.9
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

# Where a server's batches are committed (``api.writer``).
WriterKind = Literal["process", "thread"]


class ImpossibleTravelConfig(BaseModel):
    max_speed_kmh: float = 500.0
    # Two terminals this close are "the same place": GPS noise and city blocks, not travel.
    min_distance_km: float = 20.0
    # IP geolocation is coarse: logins must be this far apart before travel speed means much.
    login_min_distance_km: float = 300.0
    # A person (unlike a card at an ATM) may log in after a flight: an airliner's speed.
    login_max_speed_kmh: float = 1000.0


class NoveltyConfig(BaseModel):
    # A profile with fewer events than this is not settled enough for "new" to mean much.
    settled_after: int = 5
    # Alone, each stays under the step-up threshold; together they reach it (noisy-OR).
    new_country_score: float = 0.45
    new_device_score: float = 0.35


class AmountConfig(BaseModel):
    min_history: int = 10
    z_threshold: float = 4.0
    p99_ratio: float = 1.5
    # Priors from the card's behaviour parameters count as this many observations.
    prior_weight: int = 10


class ExtractLimitConfig(BaseModel):
    daily_ratio: float = 1.0
    daily_score: float = 0.6


class LostStolenConfig(BaseModel):
    """Withdrawals at several different ATMs within hours (detect/lost_stolen.py)."""

    window_hours: float = 6.0
    min_atms: int = 3
    # As in VelocityConfig: withdrawals happen in the waking hours, at the card's usual rate
    # floored at ``min_rate_per_day``.
    active_hours: float = 14.0
    min_rate_per_day: float = 0.5
    tail_probability: float = 1e-3
    # Earlier withdrawals of the spree already past this share of the extract limit: a thief
    # emptying the card, so a count that is merely unlikely is enough.
    drained_share: float = 0.8
    drained_tail_probability: float = 0.05


class FarFromHomeConfig(BaseModel):
    """A card used far beyond where it has been before (detect/home.py)."""

    # Judged once the card has a history; beyond ``min_km`` from home and ``ratio`` times the
    # farthest it has been. Weak alone (people travel): below step-up (PolicyConfig) however
    # far, it strengthens other evidence.
    min_history: int = 10
    min_km: float = 100.0
    ratio: float = 2.0
    score: float = 0.3
    max_score: float = 0.45


class MuleConfig(BaseModel):
    """Money-mule flows (detect/mule.py)."""

    # People receive a transfer or two a day (salary, family); five from different accounts in
    # one day is a collection. The chance is judged against the account's own rate, floored at
    # ``min_rate_per_day`` so a quiet account is not flagged for its second transfer in a year.
    fan_in_min_count: int = 5
    min_rate_per_day: float = 0.5
    tail_probability: float = 1e-4
    # Sending on a good part of a day's unusual inflow (three or more transfers in) to new
    # payees is the mule's purpose, often split in two or three transfers; the inflow need
    # only be mildly unusual once the money leaves.
    pass_through_min_inflows: int = 3
    pass_through_share: float = 0.3
    pass_through_tail_probability: float = 1e-2


class VelocityConfig(BaseModel):
    window: str = "1h"
    # Probability under the entity's usual Poisson rate below which a count is implausible.
    # People bundle an inquiry with a withdrawal, so small clusters are commoner than Poisson
    # says; only a count far in the tail is evidence.
    tail_probability: float = 1e-6
    min_count: int = 4
    # Operations cluster in waking hours; a day's rate is spread over this many hours.
    active_hours: float = 14.0
    # Even a card with no history is allowed about this many operations a day.
    min_rate_per_day: float = 1.0


# The sliding windows profiles keep (vigil.profiles.windows.WINDOWS).
Window = Literal["1h", "1d", "7d", "30d", "90d"]


class LoginConfig(BaseModel):
    """Internet-banking logins (detect/login.py); scores are noisy-OR evidence, see Policy."""

    # Unusual hour: the user's hour-of-day histogram needs this many activities to be a habit,
    # and an hour is unusual when the hour and its two neighbours hold under this share of
    # them (a habit is a spread of ±1-2 h, not one exact hour). Weak alone: people have
    # sleepless nights; with a new device it reaches step-up.
    hour_min_history: int = 20
    hour_max_share: float = 0.02
    hour_score: float = 0.25
    # Rare country: known, but under this share of the user's activity and not used for this
    # long (a return to a country seen once, months ago). Weaker than a new country.
    rare_country_max_share: float = 0.05
    rare_country_stale_days: float = 60.0
    rare_country_score: float = 0.3
    # Failed-login burst: a person mistypes once or twice; five failures within the window
    # is guessing (banks commonly lock at 3-5). A success right after a burst is the guess
    # that worked, so it scores higher than the failures.
    burst_window: Window = "1h"
    burst_min_failures: int = 5
    burst_failed_score: float = 0.5
    burst_success_score: float = 0.75
    # Credential stuffing from one network (IP /24 or /48): this many distinct users within the
    # window, at least this many failures, and failures the majority. Shared networks (offices,
    # carrier NAT) have many users but few failures; a stolen-credential list has mostly misses.
    stuffing_window: Window = "1h"
    stuffing_min_users: int = 5
    stuffing_min_failures: int = 5
    stuffing_min_failure_share: float = 0.5
    # One device hash is one phone or browser: a household shares it between two or three
    # people, not four distinct users within an hour, failures or not.
    stuffing_device_min_users: int = 4
    stuffing_score: float = 0.7


class TransferConfig(BaseModel):
    """First transfer to a new counterparty or counterparty country (detect/transfer.py)."""

    # The account's (or user's) transfer history must hold this many transfers before its
    # p95 and its list of counterparties say what is usual (as AmountConfig.min_history).
    min_history: int = 10
    # A new foreign country above the usual p95 is enough; a new domestic payee is everyday
    # life (a new landlord, a new shop), so only a payment well above the p95 counts.
    country_p95_ratio: float = 1.0
    counterparty_p95_ratio: float = 3.0
    # A new country with a large amount steps up alone; a new payee alone stays below it.
    country_score: float = 0.55
    counterparty_score: float = 0.4


class DormancyConfig(BaseModel):
    """A dormant account suddenly active again (detect/dormancy.py)."""

    # Three months of silence is well past the monthly rhythm of salaries and bills;
    # regulatory dormancy (6-12 months) comes later, and the score keeps growing up to it.
    dormant_days: float = 90.0
    full_days: float = 365.0
    # A profile this thin was never active enough to go dormant.
    min_history: int = 5
    # Below step-up alone (people come back from long stays abroad); with a new device or a
    # large transfer it tips the decision.
    low_score: float = 0.3
    high_score: float = 0.45


class GenomeConfig(BaseModel):
    """An account's flow genome against its peer group's percentile (detect/genome.py)."""

    # Above this percentile of the accounts of its holder's country that trade with the same
    # counterparty country in the same direction: their expectation E, volume or count N.
    percentile: float = Field(0.99, gt=0, lt=1)
    # A p99 is a percentile only in a group of at least 1 / (1 - 0.99) = 100 accounts; in a
    # smaller one it is the largest of the others, and someone is always above it.
    min_peers: int = Field(100, ge=2)
    # An expectation needs a few amounts; one large amount is detect/amount.py's question.
    min_count: int = Field(5, ge=1)
    # By construction one account in a hundred is above its peers' p99, nearly all of them
    # honest: weak evidence alone (below step-up), a weight beside other reasons.
    score: float = Field(0.3, ge=0, le=1)


class DetectorsConfig(BaseModel):
    impossible_travel: ImpossibleTravelConfig = Field(default_factory=ImpossibleTravelConfig)
    novelty: NoveltyConfig = Field(default_factory=NoveltyConfig)
    amount: AmountConfig = Field(default_factory=AmountConfig)
    extract_limit: ExtractLimitConfig = Field(default_factory=ExtractLimitConfig)
    velocity: VelocityConfig = Field(default_factory=VelocityConfig)
    mule: MuleConfig = Field(default_factory=MuleConfig)
    lost_stolen: LostStolenConfig = Field(default_factory=LostStolenConfig)
    far_from_home: FarFromHomeConfig = Field(default_factory=FarFromHomeConfig)
    login: LoginConfig = Field(default_factory=LoginConfig)
    transfer: TransferConfig = Field(default_factory=TransferConfig)
    dormancy: DormancyConfig = Field(default_factory=DormancyConfig)
    genome: GenomeConfig = Field(default_factory=GenomeConfig)


class PolicyConfig(BaseModel):
    step_up_at: float = 0.5
    review_at: float = 0.7
    block_at: float = 0.9


class RulesConfig(BaseModel):
    """Analysts' rule files (vigil.rules): which file is in force and how often it is checked."""

    enabled: bool = True
    # None: the packaged default set (vigil/rules/default.yaml); copy it, edit, point here.
    path: Path | None = None
    # A changed file is picked up within this many seconds (one stat call per interval).
    poll_seconds: float = Field(5.0, gt=0)


class ProfilesConfig(BaseModel):
    # Recent card-terminal edges older than this leave the volatile graph.
    recent_window_seconds: float = 86400.0
    recent_max_events: int = 32
    top_k: int = 8
    # A profile untouched this long leaves a shared (Redis) store: longer than the longest
    # window (90 d), so only entities that have really gone quiet are forgotten.
    idle_ttl_seconds: float = 100 * 86400.0
    # How long a shared store remembers the decision each event id got once it is committed,
    # so a repeat that reaches another process at once gets it too (later, every process finds
    # it in the database: each follows what the others commit). Until its commit is known, a
    # decision is kept as long as the profiles that count it. About 400 bytes an event in Redis.
    claim_ttl_seconds: float = Field(600.0, gt=0)
    # In-process profiles are checkpointed to the database this often (the profiles changed
    # since the last one); a restart re-applies the stored events after the newest checkpoint.
    checkpoint_seconds: float = Field(30.0, gt=0)


# Development keys, published here on purpose so a fresh checkout runs; anyone can read them,
# so a deployment must set its own (VIGIL_PRIVACY__HMAC_KEY, VIGIL_PRIVACY__ENCRYPTION_KEYS).
DEV_HMAC_KEY = "vigil-development-pseudonym-key-do-not-use-in-production"
DEV_ENCRYPTION_KEY = "dmlnaWwtZGV2ZWxvcG1lbnQta2V5LTMyLWJ5dGVzISE="


class RetentionConfig(BaseModel):
    """How long events are kept; None keeps them for ever (risk events, the audit trail)."""

    logins_days: float | None = 90.0
    transactions_days: float | None = 365.0
    risk_events_days: float | None = None


class PrivacyConfig(BaseModel):
    # Key of the HMAC that turns IPs, device fingerprints and erased people into pseudonyms.
    # Changing it changes every pseudonym, so profiles keyed by the old ones stop matching.
    hmac_key: str = DEV_HMAC_KEY
    # Contact-data keys by id (base64 of 32 bytes, AES-256-GCM); every ciphertext names its
    # key id, so old keys stay here until `vigil privacy rotate-key` has re-encrypted.
    encryption_keys: dict[str, str] = Field(default_factory=lambda: {"dev": DEV_ENCRYPTION_KEY})
    encryption_key_id: str = "dev"
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    # `vigil serve` applies the retention policy this often (0: only `vigil purge` does).
    purge_interval_hours: float = Field(24.0, ge=0)


class ApiConfig(BaseModel):
    """``vigil serve``: where it listens and what one request may carry."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_batch: int = Field(1000, ge=1)
    max_body_bytes: int = Field(1_048_576, ge=1024)
    # Group commit: a decision is answered once it is committed, and decisions share commits.
    # While the writer commits one batch the next gathers; when the writer is idle, a new
    # decision waits this long for others to join its batch before it is handed over; in a
    # burst of requests (decided back to back), a batch that has gathered this long goes at
    # once, so the writer commits while the loop decides. 4 ms against 1 ms (bench/http.py,
    # SQLite): 32 connections 2,575-2,633 against 2,212-2,269 decisions/s, 12 decisions a
    # commit against 4.6; at an open 400/s, p50 4.6 against 3.1 ms.
    group_commit_ms: float = Field(4.0, ge=0, le=1000)
    # A verified API key is trusted this long before its row is read again (revocation by
    # another process takes effect within it; revocation through this API at once).
    key_cache_seconds: float = Field(30.0, ge=0)
    # Where batches are committed: "process", a writer process of its own, so building and
    # inserting the rows does not take the event loop's interpreter lock (a third of a
    # server's CPU); "thread", a writer thread in the server's process. An in-memory SQLite
    # database, which no other process can open, is always written by a thread.
    writer: WriterKind = "process"


class StreamConfig(BaseModel):
    """``vigil consume``: events from NATS JetStream (vigil.stream)."""

    nats_url: str = "nats://127.0.0.1:4222"
    # Partitions of the event subjects: with more than one, publishers append the partition
    # of the event's key (vigil.stream.subjects.partition_of) to the subject, and workers
    # share the partitions, one owner each at a time.
    partitions: int = Field(1, ge=1, le=1024)
    # Messages fetched (and decided) at once by one partition's consumer: bounds the work in
    # flight.
    batch: int = Field(256, ge=1, le=10_000)
    # A worker that stops renewing its partition leases loses them after this long; another
    # worker then takes them over and resumes from the last acknowledged message.
    lease_seconds: float = Field(5.0, gt=0.5)
    # Unacknowledged messages are delivered again after this long.
    ack_wait_seconds: float = Field(30.0, gt=0)
    # A message that cannot be decided yet (another process's claim on its event, a failed
    # commit) is tried again, in place, this often; its partition waits meanwhile.
    retry_seconds: float = Field(0.5, gt=0, le=60)
    # How long the events and decisions streams keep messages, when vigil creates them: raw
    # events carry personal data in clear, and the database keeps (and erases) both.
    retain_hours: float = Field(168.0, gt=0)
    # A worker that loses NATS tries to reconnect this long, then exits (status 1) for its
    # supervisor to restart it; meanwhile its partitions stop once their leases may lapse.
    reconnect_seconds: float = Field(120.0, ge=2)
    # /metrics of a worker (lag, decided, rejected, redelivered); 0: none.
    metrics_port: int = Field(9464, ge=0, le=65535)


class StandinConfig(BaseModel):
    """StandIn decisions (models/standin.py): thresholds chosen on validation to meet a target."""

    # "loss_rate": approve while the share of approved amount later lost stays under target;
    # "approval_rate": approve this share of StandIn requests, the least risky first.
    target: Literal["loss_rate", "approval_rate"] = "loss_rate"
    target_value: float = Field(0.02, gt=0, lt=1)
    # Between approve and decline, this share of the most risky approvals-to-be are reviewed.
    review_share: float = Field(0.05, ge=0, lt=1)
    # risk = user_weight * user score + card_weight * card score + amount_weight * a / (a + s),
    # a the amount and s the median StandIn amount: the two batch scores and the request.
    user_weight: float = Field(0.4, ge=0)
    card_weight: float = Field(0.4, ge=0)
    amount_weight: float = Field(0.2, ge=0)
    # Once `vigil score profiles` has run, the engine decides StandIn transactions itself (a
    # standin_approve / standin_review / standin_decline reason); false leaves it to the CLI.
    in_engine: bool = True


class ModelsConfig(BaseModel):
    """Trained models (models/): where the registry lives, and how the engine uses them."""

    # None: <data_dir>/models.
    registry_dir: Path | None = None
    # The promoted "transaction" model joins the detectors when there is one; false keeps
    # the engine to its detectors (or pin a version with transaction_version).
    transaction_model: bool = True
    transaction_version: str | None = None
    # The feature file (features/declared.py) whose declared features the served transaction
    # model reads online: a model trained on declared features this file does not declare, or
    # declares otherwise, is refused at load, naming them (their values would be missing).
    feature_file: Path | None = None
    # Model probability from which it adds a reason (noisy-OR evidence like a detector's).
    reason_at: float = Field(0.3, ge=0, le=1)
    top_reasons: int = Field(3, ge=1)
    standin: StandinConfig = Field(default_factory=StandinConfig)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VIGIL_", env_nested_delimiter="__", toml_file="vigil.toml", extra="ignore"
    )

    database_url: str = "sqlite:///vigil.db"
    profiles_url: str | None = None
    # A development setup (VIGIL_DEV=1, `vigil --dev`): serve, consume, import and replay run
    # with the published development privacy keys; without it they refuse to.
    dev: bool = False
    data_dir: Path = Path("vigil-data")
    detectors: DetectorsConfig = Field(default_factory=DetectorsConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    rules: RulesConfig = Field(default_factory=RulesConfig)
    profiles: ProfilesConfig = Field(default_factory=ProfilesConfig)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    stream: StreamConfig = Field(default_factory=StreamConfig)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = os.environ.get("VIGIL_CONFIG", "vigil.toml")
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file))
