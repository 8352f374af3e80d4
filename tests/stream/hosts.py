"""Test hosts: network namespaces joined to this machine by veth pairs (needs root).

Each host ``i`` gets the address 10.77.i.2, and this machine 10.77.i.1 on the other end of its
pair. The servers the workers need (NATS, PostgreSQL, Redis) listen on loopback only, so a
forwarder relays each of their ports from 10.77.i.1 to 127.0.0.1: the hosts reach them as
remote servers, over a real network stack, and nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@dataclass(frozen=True)
class Host:
    name: str
    address: str  # the host's own
    gateway: str  # this machine, as the host sees it

    def command(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]


@contextlib.contextmanager
def hosts(count: int, ports: list[int]) -> Iterator[list[Host]]:
    """``count`` hosts, each reaching ``ports`` of this machine's loopback at its gateway."""
    made: list[Host] = []
    relay = _Relay()
    try:
        for i in range(1, count + 1):
            host = Host(f"vigil-test-{i}", f"10.77.{i}.2", f"10.77.{i}.1")
            _ip("netns", "add", host.name)
            made.append(host)
            _ip("link", "add", f"vgl{i}h", "type", "veth", "peer", "name", f"vgl{i}n")
            _ip("link", "set", f"vgl{i}n", "netns", host.name)
            _ip("addr", "add", f"{host.gateway}/24", "dev", f"vgl{i}h")
            _ip("link", "set", f"vgl{i}h", "up")
            _ip(
                "netns",
                "exec",
                host.name,
                "ip",
                "addr",
                "add",
                f"{host.address}/24",
                "dev",
                f"vgl{i}n",
            )
            _ip("netns", "exec", host.name, "ip", "link", "set", f"vgl{i}n", "up")
            _ip("netns", "exec", host.name, "ip", "link", "set", "lo", "up")
            for port in ports:
                relay.add(host.gateway, port)
        relay.start()
        yield made
    finally:
        relay.stop()
        for i, host in enumerate(made, start=1):
            subprocess.run(["ip", "link", "del", f"vgl{i}h"], capture_output=True)
            subprocess.run(["ip", "netns", "del", host.name], capture_output=True)


class _Relay:
    """TCP relays from (address, port) to 127.0.0.1:port, on an event loop in a thread."""

    def __init__(self) -> None:
        self.endpoints: list[tuple[str, int]] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.servers: list[asyncio.AbstractServer] = []

    def add(self, address: str, port: int) -> None:
        self.endpoints.append((address, port))

    def start(self) -> None:
        self.thread.start()
        for address, port in self.endpoints:
            future = asyncio.run_coroutine_threadsafe(self._serve(address, port), self.loop)
            self.servers.append(future.result(timeout=10))

    def stop(self) -> None:
        if not self.thread.is_alive():
            return
        for server in self.servers:
            self.loop.call_soon_threadsafe(server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    async def _serve(self, address: str, port: int) -> asyncio.AbstractServer:
        async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                writer.close()
                return
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

        return await asyncio.start_server(relay, address, port)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()
