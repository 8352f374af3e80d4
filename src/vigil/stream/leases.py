"""Who owns which partition: leases in a NATS key-value bucket whose entries expire.

A worker owns a partition while its lease entry exists. It takes a free one with ``create``
(which fails while another worker's entry is there) and renews it with ``update`` against the
revision it last wrote, so a renewal fails at once if it lost the lease. The bucket's entries
expire ``lease_seconds`` after their last write: a worker that dies, or is cut off, loses its
partitions that long after its last renewal, and another worker takes them over, resuming from
the partition's last acknowledged message. A worker renews every third of that time and stops
deciding a partition it failed to renew.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig
from nats.js.errors import APIError, BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue

log = logging.getLogger(__name__)

BUCKET = "VIGIL_LEASES"
# Any refusal or failure of a lease write means the lease is not (or no longer surely) ours.
# A compare-and-set that lost comes back as 'wrong last sequence' under several error codes
# (10071, 10164, and for a key that expired or was deleted meanwhile, codes the client does
# not map to KeyWrongLastSequenceError), and a worker must never die of one: not taking a
# partition, or giving one up, is always safe (its messages are acknowledged only after
# their commit, so whoever takes it next resumes from there).
_REFUSED = (APIError, NatsTimeout)


async def lease_bucket(js: JetStreamContext, lease_seconds: float) -> KeyValue:
    try:
        return await js.key_value(BUCKET)
    except (BucketNotFoundError, NotFoundError):
        return await js.create_key_value(
            config=KeyValueConfig(bucket=BUCKET, ttl=lease_seconds, history=1)
        )


@dataclass
class Leases:
    """This worker's leases on partitions (``owner`` names the worker: host and process)."""

    kv: KeyValue
    owner: str
    held: dict[int, int] = field(default_factory=dict)  # partition -> revision written

    async def take(self, partition: int) -> bool:
        """Take the partition if nobody holds it; True when this worker now does."""
        try:
            self.held[partition] = await self.kv.create(_key(partition), self.owner.encode())
        except _REFUSED:
            return False
        log.info("took partition %d", partition)
        return True

    async def renew(self) -> list[int]:
        """Renew every lease held; returns the partitions lost (renewal refused)."""
        lost = []
        for partition, revision in list(self.held.items()):
            try:
                self.held[partition] = await self.kv.update(
                    _key(partition), self.owner.encode(), last=revision
                )
            except _REFUSED as exc:
                log.warning("lost partition %d: %s", partition, exc)
                del self.held[partition]
                lost.append(partition)
        return lost

    def abandon(self) -> list[int]:
        """Stop counting every lease as held, without asking NATS (it cannot be reached):
        returns the partitions, which lapse on their own and may be taken again later."""
        partitions = list(self.held)
        for partition in partitions:
            log.warning("gave up partition %d: its lease was not renewed", partition)
        self.held.clear()
        return partitions

    async def release(self) -> None:
        """Give every lease back (a clean stop), so others need not wait for them to expire."""
        for partition, revision in list(self.held.items()):
            with contextlib.suppress(*_REFUSED):
                await self.kv.delete(_key(partition), last=revision)
            del self.held[partition]


def _key(partition: int) -> str:
    return f"partition.{partition}"
