"""The tamper-evident audit trail: the risk events chained one by one, every decision sealed
in the batch it was committed with, the batches chained.

One module a part:

* :mod:`~vigil.storage.audit.risk_chain`: the risk-event hash chain (its two link formats) and
  what both chains are built from: the link hash, a chain's head, the writers' lock;
* :mod:`~vigil.storage.audit.seals`: the decisions' batches, their seals and the chain of their
  links, sealed again after vigil's own erasure and retention;
* :mod:`~vigil.storage.audit.verification`: the walks ``vigil audit verify`` runs over both, and
  the heads to anchor (:mod:`vigil.storage.anchor` keeps them signed).

The names below are the ones callers use (the writer, migrations, erasure, retention, the
command), so they keep writing ``audit.chain(...)`` and ``from vigil.storage.audit import ...``.
"""

from vigil.storage.audit.risk_chain import (
    ERASED_CARD,
    ERASED_USER,
    GENESIS,
    chain,
    chain_existing,
    link,
)
from vigil.storage.audit.seals import append_link, prepare_batch, reseal, seal_existing
from vigil.storage.audit.verification import ChainReport, verify, verify_chain

__all__ = [
    "ERASED_CARD",
    "ERASED_USER",
    "GENESIS",
    "ChainReport",
    "append_link",
    "chain",
    "chain_existing",
    "link",
    "prepare_batch",
    "reseal",
    "seal_existing",
    "verify",
    "verify_chain",
]
