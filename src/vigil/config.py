"""One settings object, read from ``vigil.toml`` and ``VIGIL_*`` environment variables.

Environment beats file; nested fields use ``__`` (``VIGIL_POLICY__BLOCK_AT=0.9``).

>>> Settings(database_url="sqlite:///x.db").policy.block_at
0.9
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


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


class DetectorsConfig(BaseModel):
    impossible_travel: ImpossibleTravelConfig = Field(default_factory=ImpossibleTravelConfig)
    novelty: NoveltyConfig = Field(default_factory=NoveltyConfig)
    amount: AmountConfig = Field(default_factory=AmountConfig)
    extract_limit: ExtractLimitConfig = Field(default_factory=ExtractLimitConfig)
    velocity: VelocityConfig = Field(default_factory=VelocityConfig)


class PolicyConfig(BaseModel):
    step_up_at: float = 0.5
    review_at: float = 0.7
    block_at: float = 0.9


class ProfilesConfig(BaseModel):
    # Recent card-terminal edges older than this leave the volatile graph.
    recent_window_seconds: float = 86400.0
    recent_max_events: int = 32
    top_k: int = 8


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VIGIL_", env_nested_delimiter="__", toml_file="vigil.toml", extra="ignore"
    )

    database_url: str = "sqlite:///vigil.db"
    profiles_url: str | None = None
    data_dir: Path = Path("vigil-data")
    detectors: DetectorsConfig = Field(default_factory=DetectorsConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    profiles: ProfilesConfig = Field(default_factory=ProfilesConfig)

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
