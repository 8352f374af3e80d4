"""The privacy keys of one deployment: the pseudonymiser and the contact cipher, built once
from the ``privacy`` settings and handed to the engine and the store.

>>> keys = PrivacyKeys.from_config(PrivacyConfig())
>>> keys.uses_development_keys, keys.cipher.current
(True, 'dev')
"""

from __future__ import annotations

from dataclasses import dataclass

from vigil.config import DEV_ENCRYPTION_KEY, DEV_HMAC_KEY, PrivacyConfig, Settings
from vigil.privacy.contact import ContactCipher
from vigil.privacy.pseudonyms import Pseudonymiser


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
