"""The privacy keys of one deployment: the pseudonymiser and the contact cipher, built once
from the ``privacy`` settings and handed to the engine and the store.

>>> keys = PrivacyKeys.from_config(PrivacyConfig())
>>> keys.uses_development_keys, keys.cipher.current
(True, 'dev')
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from vigil.config import DEV_ENCRYPTION_KEY, DEV_HMAC_KEY, PrivacyConfig, Settings
from vigil.privacy.contact import ContactCipher
from vigil.privacy.pseudonyms import Pseudonymiser

#: The settings that replace the development keys, as environment variables.
KEY_VARIABLES = (
    "VIGIL_PRIVACY__HMAC_KEY",
    "VIGIL_PRIVACY__ENCRYPTION_KEYS",
    "VIGIL_PRIVACY__ENCRYPTION_KEY_ID",
)


class DevelopmentKeysError(ValueError):
    """Personal data would be protected by keys anyone can read in vigil's source."""


@dataclass(frozen=True, slots=True)
class PrivacyKeys:
    """Pseudonyms and contact encryption under the configured keys.

    >>> PrivacyKeys.from_config(PrivacyConfig(hmac_key="s3cret")).uses_development_keys
    True
    """

    pseudonyms: Pseudonymiser
    cipher: ContactCipher
    uses_development_keys: bool

    @classmethod
    def from_config(cls, config: PrivacyConfig) -> PrivacyKeys:
        dev = (
            config.hmac_key == DEV_HMAC_KEY or DEV_ENCRYPTION_KEY in config.encryption_keys.values()
        )
        return cls(
            pseudonyms=Pseudonymiser(config.hmac_key.encode()),
            cipher=ContactCipher(config.encryption_keys, config.encryption_key_id),
            uses_development_keys=dev,
        )

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> PrivacyKeys:
        """From these settings, or from the environment and ``vigil.toml`` when none given."""
        return cls.from_config((settings or Settings()).privacy)


def refuse_development_keys(settings: Settings, doing: str) -> None:
    """Refuse ``doing`` (say ``vigil serve``) while the privacy keys are the published
    development ones, unless ``settings.dev`` says this is a development setup.

    With the public HMAC key every IPv4 pseudonym is reversed by hashing 2³² addresses, and
    contact data "encrypted" with the public key is readable by anyone; starting silently would
    leave an operator believing otherwise.

    >>> refuse_development_keys(Settings(dev=False), "vigil serve")
    Traceback (most recent call last):
    ...
    vigil.privacy.keys.DevelopmentKeysError: vigil serve refused: the privacy keys are the ...
    """
    if not PrivacyKeys.from_config(settings.privacy).uses_development_keys:
        return
    if settings.dev:
        return
    raise DevelopmentKeysError(
        f"{doing} refused: the privacy keys are the published development keys, so pseudonyms "
        "are reversible and contact data readable by anyone; run `vigil privacy init` and set "
        f"{', '.join(KEY_VARIABLES)} from its output (keep them secret), or, for a development "
        "setup on synthetic data, pass --dev (VIGIL_DEV=1)"
    )


def new_keys(now: datetime | None = None) -> dict[str, str]:
    """Fresh privacy keys as the environment variables that set them: a 256-bit HMAC key and
    one AES-256 contact key, named by the day it was made (so a later rotation adds another).

    >>> keys = new_keys(datetime(2024, 5, 1, tzinfo=UTC))
    >>> sorted(keys) == sorted(KEY_VARIABLES), keys["VIGIL_PRIVACY__ENCRYPTION_KEY_ID"]
    (True, 'k20240501')
    >>> import json
    >>> config = PrivacyConfig(hmac_key=keys["VIGIL_PRIVACY__HMAC_KEY"],
    ...                        encryption_keys=json.loads(keys["VIGIL_PRIVACY__ENCRYPTION_KEYS"]),
    ...                        encryption_key_id=keys["VIGIL_PRIVACY__ENCRYPTION_KEY_ID"])
    >>> PrivacyKeys.from_config(config).uses_development_keys
    False
    """
    key_id = f"k{(now or datetime.now(UTC)):%Y%m%d}"
    contact = base64.b64encode(secrets.token_bytes(32)).decode()
    return {
        "VIGIL_PRIVACY__HMAC_KEY": secrets.token_hex(32),
        "VIGIL_PRIVACY__ENCRYPTION_KEYS": f'{{"{key_id}": "{contact}"}}',
        "VIGIL_PRIVACY__ENCRYPTION_KEY_ID": key_id,
    }
