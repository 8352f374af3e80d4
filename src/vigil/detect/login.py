"""Internet-banking logins: unusual hour, rare country, failed-login burst, credential stuffing.

A *new* country or device is :mod:`vigil.detect.novelty`'s; this module adds what a login
says beyond novelty: an hour the user is never active at, a country known but rare and long
unused, a run of failed passwords on one user, and many users failing from one network or
device. Every detector judges the profiles as they were before the login.

>>> from datetime import datetime, UTC
>>> from vigil.domain import Login
>>> from vigil.profiles import Profile
>>> user = Profile()
>>> for day in range(30):   # every morning around 08:00 UTC
...     user.record_login(day * 86400.0 + 8 * 3600, True, latitude=None, longitude=None,
...                       place=None, attributes=(("country", "NG"),))
>>> login = Login(event_id="l", user_id="u", country="NG",
...               timestamp=datetime(2022, 2, 1, 3, tzinfo=UTC))
>>> ctx = Context(login, login.timestamp.timestamp(), login.timestamp.timestamp(), 5, None,
...               profiles={"user": user})
>>> [(r.code, r.score) for r in UnusualLoginHour().detect(ctx)]
[('unusual_login_hour', 0.25)]
"""

from __future__ import annotations

from vigil.config import LoginConfig
from vigil.detect.base import strength
from vigil.detect.context import Context
from vigil.domain import Login, Reason
from vigil.profiles import Profile
from vigil.profiles.profile import LOGIN, LOGIN_FAILED
from vigil.profiles.update import ip_prefix
from vigil.profiles.windows import WINDOW_INDEX, WINDOWS

_DAY = 86400.0


def _login(ctx: Context) -> Login | None:
    event = ctx.event
    return event if isinstance(event, Login) else None


def _usual_country(user: Profile) -> str | None:
    """The country the user is most often active from (ties: alphabetical, as most_common)."""
    countries = user.seen.get("country")
    if not countries:
        return None
    return min(countries.values.items(), key=lambda kv: (-kv[1][0], kv[0]))[0]


class UnusualLoginHour:
    """A successful login at an hour the user's activity histogram (``Profile.hours``) avoids.

    The hour and its two neighbours are read together, so a habit that drifts by an hour is
    still a habit; a night-shift worker's histogram holds their nights. The histogram is in
    the clock of the user's usual country, so a login from elsewhere (another time zone) is
    left to the novelty and travel detectors.

    >>> from datetime import datetime, UTC
    >>> from vigil.domain import Login
    >>> user = Profile()
    >>> user.hours[2:5] = [10, 20, 10]   # a night-shift worker
    >>> at = datetime(2022, 2, 1, 3, tzinfo=UTC)
    >>> ctx = Context(Login(event_id="l", user_id="u", timestamp=at), at.timestamp(),
    ...               at.timestamp(), 5, None, profiles={"user": user})
    >>> UnusualLoginHour().detect(ctx)
    []
    """

    codes = ("unusual_login_hour",)

    def __init__(self, config: LoginConfig | None = None) -> None:
        self.config = config or LoginConfig()

    def detect(self, ctx: Context) -> list[Reason]:
        login = _login(ctx)
        user = ctx.profiles.get("user")
        if login is None or not login.success or user is None:
            return []
        cfg = self.config
        hours = user.hours
        total = sum(hours)
        if total < cfg.hour_min_history:
            return []
        hour = int(ctx.start // 3600) % 24
        near = hours[hour - 1] + hours[hour] + hours[(hour + 1) % 24]
        share = near / total
        if share >= cfg.hour_max_share:
            return []
        if login.country is not None and login.country != _usual_country(user):
            return []
        busiest = hours.index(max(hours))
        return [
            Reason(
                code="unusual_login_hour",
                score=strength(
                    1 - share / cfg.hour_max_share, low=cfg.hour_score / 2, high=cfg.hour_score
                ),
                detail=f"login at {hour:02d}:00 UTC; {near} of the user's {total} activities "
                f"fall within an hour of it (busiest hour {busiest:02d}:00)",
                entity="user",
            )
        ]


class RareLoginCountry:
    """A login from a country the user knows, but rarely used and not for a long time.

    Complements ``new_country`` (novelty), which only asks whether the country was ever seen:
    one login from abroad months ago does not make that country usual. The user's home
    country is never rare; a trip in progress (the country used lately) is not either.

    >>> from datetime import datetime, UTC
    >>> from vigil.domain import Login
    >>> t0 = datetime(2022, 1, 1, tzinfo=UTC).timestamp()
    >>> user = Profile()
    >>> user.record_login(t0, True, latitude=None, longitude=None, place=None,
    ...                   attributes=(("country", "GB"),))
    >>> for day in range(90, 120):
    ...     user.record_login(t0 + day * 86400.0, True, latitude=None, longitude=None,
    ...                       place=None, attributes=(("country", "NG"),))
    >>> at = datetime(2022, 5, 1, tzinfo=UTC)   # day 120
    >>> ctx = Context(Login(event_id="l", user_id="u", timestamp=at, country="GB"),
    ...               at.timestamp(), at.timestamp(), 5, None, profiles={"user": user})
    >>> [r.code for r in RareLoginCountry().detect(ctx)]
    ['rare_login_country']
    """

    codes = ("rare_login_country",)

    def __init__(self, config: LoginConfig | None = None) -> None:
        self.config = config or LoginConfig()

    def detect(self, ctx: Context) -> list[Reason]:
        login = _login(ctx)
        user = ctx.profiles.get("user")
        if login is None or not login.success or user is None or login.country is None:
            return []
        countries = user.seen.get("country")
        if countries is None or login.country not in countries:
            return []  # unknown entirely: novelty's new_country
        if ctx.user is not None and ctx.user.country == login.country:
            return []
        cfg = self.config
        entry = countries.values[login.country]
        uses, last = entry[0], entry[2]
        share = uses / sum(v[0] for v in countries.values.values())
        idle_days = (ctx.start - last) / _DAY
        if share >= cfg.rare_country_max_share or idle_days < cfg.rare_country_stale_days:
            return []
        return [
            Reason(
                code="rare_login_country",
                score=strength(
                    1 - share / cfg.rare_country_max_share,
                    low=cfg.rare_country_score / 2,
                    high=cfg.rare_country_score,
                ),
                detail=f"login from {login.country}: {int(uses)} of the user's activities "
                f"({share:.0%}), last {idle_days:.0f} days ago",
                entity="user",
            )
        ]


class FailedLoginBurst:
    """Many failed passwords on one user within a short window, and the success that ends them.

    >>> from datetime import datetime, UTC
    >>> from vigil.domain import Login
    >>> t0 = datetime(2022, 1, 1, tzinfo=UTC).timestamp()
    >>> user = Profile()
    >>> for k in range(4):
    ...     user.advance(t0 + k * 60.0)
    ...     user.record_login(t0 + k * 60.0, False, latitude=None, longitude=None, place=None)
    >>> at = datetime(2022, 1, 1, 0, 5, tzinfo=UTC)
    >>> ctx = Context(Login(event_id="l", user_id="u", timestamp=at, success=False),
    ...               at.timestamp(), at.timestamp(), 6, None, profiles={"user": user})
    >>> [(r.code, r.score) for r in FailedLoginBurst().detect(ctx)]
    [('failed_login_burst', 0.5)]
    """

    codes = ("failed_login_burst",)

    def __init__(self, config: LoginConfig | None = None) -> None:
        self.config = config or LoginConfig()
        self._window = WINDOW_INDEX[self.config.burst_window]

    def detect(self, ctx: Context) -> list[Reason]:
        login = _login(ctx)
        user = ctx.profiles.get("user")
        if login is None or user is None:
            return []
        cfg = self.config
        failures = user.windows.count(self._window, LOGIN_FAILED)
        if not login.success:
            failures += 1
        if failures < cfg.burst_min_failures:
            return []
        if login.success:
            score = cfg.burst_success_score
            detail = f"successful login after {failures} failed attempts in {cfg.burst_window}"
        else:
            score = cfg.burst_failed_score
            detail = f"{failures} failed login attempts in {cfg.burst_window}"
        return [Reason(code="failed_login_burst", score=score, detail=detail, entity="user")]


class CredentialStuffing:
    """Many users trying one network (IP /24 or /48) or one device within a short window.

    A network counts when most of its recent attempts failed (shared networks — offices,
    carrier NAT — have many users but few failures); a device counts on users alone, since
    one phone or browser is not shared by many people. Both the misses and the hits are
    flagged: the hit is the account the list has just opened.

    >>> from datetime import datetime, UTC
    >>> from vigil.domain import Login
    >>> t0 = datetime(2022, 1, 1, tzinfo=UTC).timestamp()
    >>> network = Profile()
    >>> for k in range(6):
    ...     network.advance(t0 + k * 30.0)
    ...     network.record_login(t0 + k * 30.0, False, latitude=None, longitude=None,
    ...                          place=None, witnessed=(("user", f"u-{k}"),))
    >>> at = datetime(2022, 1, 1, 0, 4, tzinfo=UTC)
    >>> ctx = Context(Login(event_id="l", user_id="u-9", ip="41.58.2.9", timestamp=at),
    ...               at.timestamp(), at.timestamp(), 5, None, profiles={"ip": network})
    >>> [r.code for r in CredentialStuffing().detect(ctx)]
    ['credential_stuffing']
    """

    codes = ("credential_stuffing",)

    def __init__(self, config: LoginConfig | None = None) -> None:
        self.config = config or LoginConfig()
        self._window = WINDOW_INDEX[self.config.stuffing_window]
        self._seconds = WINDOWS[self._window][1]

    def detect(self, ctx: Context) -> list[Reason]:
        login = _login(ctx)
        if login is None:
            return []
        cfg = self.config
        for kind in ("ip", "device"):
            source = ctx.profiles.get(kind)
            if source is None or source.n == 0:
                continue
            threshold = cfg.stuffing_min_users if kind == "ip" else cfg.stuffing_device_min_users
            if source.seen_count("user") + 1 < threshold:
                continue  # cheap bound first: too few users ever, let alone lately
            failed = source.windows.count(self._window, LOGIN_FAILED) + (not login.success)
            attempts = source.windows.count(self._window, LOGIN) + failed + login.success
            if kind == "ip" and (
                failed < cfg.stuffing_min_failures
                or failed < cfg.stuffing_min_failure_share * attempts
            ):
                continue
            users = self._recent_users(source, login.user_id, ctx.start)
            if users < threshold:
                continue
            if kind == "ip":
                what = f"network {ip_prefix(login.ip or '')}"
            else:
                what = f"device {(login.device_id or '')[:12]}"
            score = strength(
                (users - threshold) / threshold,
                low=cfg.stuffing_score,
                high=max(cfg.stuffing_score, 0.95),
            )
            return [
                Reason(
                    code="credential_stuffing",
                    score=score,
                    detail=f"{users} users tried {what} in {cfg.stuffing_window}: "
                    f"{failed} of {attempts} attempts failed",
                    entity=kind,
                )
            ]
        return []

    def _recent_users(self, source: Profile, user_id: str, now: float) -> int:
        """Distinct users seen on ``source`` within the window, this login's user included.

        Bounded by the profile's top-k: the count saturates there, which is above any sane
        threshold (the least-used, oldest users are the ones evicted).
        """
        users = source.seen.get("user")
        if users is None:
            return 1
        edge = now - self._seconds
        others = sum(1 for user, seen in users.values.items() if seen[2] > edge and user != user_id)
        return others + 1
