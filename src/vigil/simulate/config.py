"""Every knob of the synthetic bank, with defaults that make a small, realistic bank."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

# The injected fraud patterns, in the order episodes are drawn for them.
PATTERNS: tuple[str, ...] = (
    "card_cloning",
    "lost_stolen_card",
    "account_takeover",
    "amount_spike",
    "velocity_burst",
    "extract_limit_breach",
    "money_mule",
)


def _default_weights() -> dict[str, float]:
    return dict.fromkeys(PATTERNS, 1.0)


@dataclass
class BankConfig:
    """Parameters of one synthetic bank; ``validate()`` names the first bad field.

    >>> cfg = BankConfig(cards=100, days=7)
    >>> cfg.validate().cards, cfg.pattern_weights["card_cloning"]
    (100, 1.0)
    >>> BankConfig(days=0).validate()
    Traceback (most recent call last):
    ...
    ValueError: days: must be at least 1 (got 0)
    """

    seed: int = 7
    bank_code: str = "VGB"
    bank_name: str = "Vigil Bank"
    hq_latitude: float = 6.4541  # Lagos, Marina
    hq_longitude: float = 3.3947
    cards: int = 2000
    atms_internal: int = 30
    atms_external: int = 20
    days: int = 30
    start: date = date(2022, 1, 1)
    # Share of cards (each its own victim) that get one injected fraud episode.
    fraud_rate: float = 0.01
    pattern_weights: dict[str, float] = field(default_factory=_default_weights)
    # Share of legitimate ATM withdrawals authorised in StandIn (bank host unreachable).
    standin_rate: float = 0.02
    # ATMs a card uses lie within this distance of home (nearest ones if none do).
    near_km: float = 70.0
    # Speed no legitimate card beats between two ATMs.
    legit_speed_kmh: float = 50.0
    logins_per_week: tuple[float, float] = (2.0, 6.0)
    login_failure_rate: float = 0.03
    # Share of users who travel abroad once during the period (and log in from there).
    travel_rate: float = 0.05
    # Chance that a successful login is followed by an online transfer in that session.
    online_transfer_rate: float = 0.08
    # Incoming transfers per day (salary, family) as a share of the card's outgoing rate.
    incoming_transfer_ratio: float = 0.4

    def validate(self) -> BankConfig:
        """Return ``self`` when every field is usable; raise ``ValueError`` naming the field."""
        _positive_int("cards", self.cards, 1)
        _positive_int("days", self.days, 1)
        _positive_int("atms_internal", self.atms_internal, 1)
        _positive_int("atms_external", self.atms_external, 0)
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed: must be a non-negative integer (got {self.seed!r})")
        if not isinstance(self.bank_code, str) or not self.bank_code.isalnum():
            raise ValueError(f"bank_code: must be letters and digits (got {self.bank_code!r})")
        if self.bank_code.upper() == "EXT":
            raise ValueError("bank_code: 'EXT' is reserved for external ATMs")
        if not self.bank_name.strip():
            raise ValueError("bank_name: must not be empty")
        if not isinstance(self.start, date):
            raise ValueError(f"start: must be a date (got {self.start!r})")
        _bounded("hq_latitude", self.hq_latitude, -90, 90)
        _bounded("hq_longitude", self.hq_longitude, -180, 180)
        _bounded("fraud_rate", self.fraud_rate, 0, 1)
        _bounded("standin_rate", self.standin_rate, 0, 1)
        _bounded("login_failure_rate", self.login_failure_rate, 0, 1)
        _bounded("travel_rate", self.travel_rate, 0, 1)
        _bounded("online_transfer_rate", self.online_transfer_rate, 0, 1)
        _bounded("incoming_transfer_ratio", self.incoming_transfer_ratio, 0, 100)
        _bounded("near_km", self.near_km, 1, 2000)
        _bounded("legit_speed_kmh", self.legit_speed_kmh, 1, 1000)
        low, high = self.logins_per_week
        if not (0 <= low <= high <= 1000):
            raise ValueError(f"logins_per_week: need 0 <= low <= high (got {self.logins_per_week})")
        unknown = set(self.pattern_weights) - set(PATTERNS)
        if unknown:
            raise ValueError(
                f"pattern_weights: unknown pattern(s) {sorted(unknown)}; known: {list(PATTERNS)}"
            )
        for name, weight in self.pattern_weights.items():
            if not (math.isfinite(weight) and weight >= 0):
                raise ValueError(f"pattern_weights: {name} must be >= 0 (got {weight})")
        if self.fraud_rate > 0 and sum(self.pattern_weights.values()) <= 0:
            raise ValueError("pattern_weights: at least one pattern needs a positive weight")
        return self

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly values (dates as ISO strings)."""
        out = asdict(self)
        out["start"] = self.start.isoformat()
        out["logins_per_week"] = list(self.logins_per_week)
        return out


def _positive_int(name: str, value: object, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name}: must be at least {minimum} (got {value!r})")


def _bounded(name: str, value: object, low: float, high: float) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not (low <= value <= high):  # type: ignore[arg-type]
        raise ValueError(f"{name}: must be a number in [{low}, {high}] (got {value!r})")
