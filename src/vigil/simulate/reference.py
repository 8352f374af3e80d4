"""The reference data shipped with vigil for the synthetic bank (from the public Wisabi dataset).

- ``behavior.csv``: per-customer behaviour parameters of Wisabi Bank's 8,819 cardholders
  (mean and standard deviation of withdrawal, deposit and transfer amounts; operations per day).
- ``atm_locations.csv``: Wisabi's 50 ATM locations with their city and state.
- ``city_bounds.csv``: a rough bounding box per Nigerian city involved.
- ``countries.csv``: home, travel and attacker countries with a reference point and IP prefixes.

>>> ref = load_reference()
>>> ref.behaviour.shape, len(ref.location_cities), "Lagos" in ref.cities
((8819, 10), 50, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.resources import files

import numpy as np
import numpy.typing as npt
import polars as pl

# Column order of ``Reference.behaviour``; also the card.csv behaviour columns.
BEHAVIOUR_COLUMNS: tuple[str, ...] = (
    "amount_avg_withdrawal",
    "amount_std_withdrawal",
    "withdrawal_day",
    "amount_avg_deposit",
    "amount_std_deposit",
    "deposit_day",
    "inquiry_day",
    "amount_avg_transfer",
    "amount_std_transfer",
    "transfer_day",
)


@dataclass(frozen=True)
class Countries:
    """Countries the simulation knows, by role ("home", "travel", "attack").

    >>> c = load_reference().countries
    >>> [c.codes[i] for i in c.with_role("home")]
    ['NG']
    """

    codes: tuple[str, ...]
    names: tuple[str, ...]
    latitude: npt.NDArray[np.float64]
    longitude: npt.NDArray[np.float64]
    ip_prefixes: tuple[tuple[str, ...], ...]
    roles: tuple[str, ...]

    def with_role(self, role: str) -> npt.NDArray[np.int64]:
        """Indices of the countries that play ``role``."""
        return np.array([i for i, r in enumerate(self.roles) if r == role], dtype=np.int64)


@dataclass(frozen=True)
class Reference:
    """Everything the generator reads from the package's data folder.

    >>> ref = load_reference()
    >>> ref.city_box[ref.city_index("Kano")].round(2).tolist()
    [11.92, 12.08, 8.45, 8.62]
    """

    behaviour: npt.NDArray[np.float64]  # (customers, len(BEHAVIOUR_COLUMNS))
    location_cities: tuple[str, ...]  # one per Wisabi ATM location: picking one is "by city"
    cities: tuple[str, ...]
    city_box: npt.NDArray[np.float64]  # (cities, 4): lat_min, lat_max, lon_min, lon_max
    countries: Countries

    def city_index(self, city: str) -> int:
        return self.cities.index(city)


def _read(name: str) -> pl.DataFrame:
    return pl.read_csv(files("vigil.simulate").joinpath("data", name).read_bytes())


@cache
def load_reference() -> Reference:
    """Read (once per process) and check the shipped reference data."""
    behaviour = _read("behavior.csv").select(BEHAVIOUR_COLUMNS).to_numpy().astype(np.float64)
    if not np.isfinite(behaviour).all() or (behaviour < 0).any():
        raise ValueError("behavior.csv: every behaviour parameter must be a finite number >= 0")
    locations = _read("atm_locations.csv")
    bounds = _read("city_bounds.csv")
    cities = tuple(bounds["city"].to_list())
    missing = set(locations["City"].to_list()) - set(cities)
    if missing:
        raise ValueError(f"city_bounds.csv: no bounding box for {sorted(missing)}")
    box = bounds.select("lat_min", "lat_max", "lon_min", "lon_max").to_numpy().astype(np.float64)
    if (box[:, 0] >= box[:, 1]).any() or (box[:, 2] >= box[:, 3]).any():
        raise ValueError("city_bounds.csv: every box needs min < max")
    c = _read("countries.csv")
    countries = Countries(
        codes=tuple(c["country"].to_list()),
        names=tuple(c["name"].to_list()),
        latitude=c["latitude"].to_numpy().astype(np.float64),
        longitude=c["longitude"].to_numpy().astype(np.float64),
        ip_prefixes=tuple(tuple(str(p).split("|")) for p in c["ip_prefix"].to_list()),
        roles=tuple(c["role"].to_list()),
    )
    return Reference(
        behaviour=behaviour,
        location_cities=tuple(locations["City"].to_list()),
        cities=cities,
        city_box=box,
        countries=countries,
    )
