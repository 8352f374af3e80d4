"""Privacy: pseudonyms for IPs and devices, encrypted contact data, erasure and retention.

One concept per module: keyed pseudonyms (``pseudonyms``), contact-data encryption
(``contact``), the keys of a deployment (``keys``), erasing one person (``erasure``), the
retention policy (``retention``) and their commands (``cli``). The tamper-evident risk-event
chain lives with the storage it protects (:mod:`vigil.storage.audit`).
"""

from vigil.privacy.contact import ContactCipher
from vigil.privacy.keys import PrivacyKeys
from vigil.privacy.pseudonyms import Pseudonymiser

__all__ = ["ContactCipher", "PrivacyKeys", "Pseudonymiser"]
