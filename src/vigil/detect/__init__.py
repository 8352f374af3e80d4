"""Detectors (one family per module), and the policy that turns their reasons into an action.

To add a detector: a class with ``codes`` and ``detect(ctx) -> list[Reason]`` in its own
module here, its parameters in :mod:`vigil.config`, and one line in :func:`default_detectors`.
"""

from __future__ import annotations

from vigil.config import DetectorsConfig
from vigil.detect.amount import AmountAnomaly
from vigil.detect.base import Detector
from vigil.detect.context import Context
from vigil.detect.dormancy import DormantReactivation
from vigil.detect.genome import GenomeOutlier
from vigil.detect.home import FarFromHome
from vigil.detect.limits import ExtractLimit
from vigil.detect.login import (
    CredentialStuffing,
    FailedLoginBurst,
    RareLoginCountry,
    UnusualLoginHour,
)
from vigil.detect.lost_stolen import LostStolenCard
from vigil.detect.mule import MoneyMule
from vigil.detect.novelty import UnfamiliarCountryOrDevice
from vigil.detect.policy import Policy
from vigil.detect.reference import UnknownReference
from vigil.detect.transfer import NewCounterpartyTransfer
from vigil.detect.travel import ImpossibleTravel
from vigil.detect.velocity import Velocity


def default_detectors(config: DetectorsConfig | None = None) -> list[Detector]:
    c = config or DetectorsConfig()
    return [
        UnknownReference(),
        ImpossibleTravel(c.impossible_travel),
        UnfamiliarCountryOrDevice(c.novelty),
        AmountAnomaly(c.amount),
        ExtractLimit(c.extract_limit),
        Velocity(c.velocity),
        UnusualLoginHour(c.login),
        RareLoginCountry(c.login),
        FailedLoginBurst(c.login),
        CredentialStuffing(c.login),
        NewCounterpartyTransfer(c.transfer),
        DormantReactivation(c.dormancy),
        MoneyMule(c.mule),
        GenomeOutlier(c.genome),
        LostStolenCard(c.lost_stolen),
        FarFromHome(c.far_from_home),
    ]


__all__ = ["Context", "Detector", "Policy", "default_detectors"]
