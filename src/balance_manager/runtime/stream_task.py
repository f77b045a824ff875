"""The background task every stream source runs: started for one consumer, watched, stopped.

A :class:`~balance_manager.core.sources.StreamSource` streams in one asyncio task that
hands events to its consumer's sink in order. What does not depend on the venue lives
here once: refusing a second consumer while the task runs, telling a task that ended
by itself (a bug, logged by the task) from one that was stopped, and the state the
source reports from then on (``closed``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from balance_manager.core.sources import StreamSink, StreamState
from balance_manager.exceptions import ConfigError

__all__ = ["StreamTask"]


class StreamTask:
    """Base of the stream sources: the task, its stop flag, the sink, the reported state.

    Subclasses call :meth:`_init_stream_task` in ``__init__``, :meth:`_launch` from
    ``start`` and set ``_state`` / ``_last_message_at`` as they stream.
    """

    _sink: StreamSink | None
    _task: asyncio.Task[None] | None
    _stop: asyncio.Event
    _state: StreamState
    _last_message_at: float | None

    def _init_stream_task(self) -> None:
        self._sink = None
        self._task = None
        self._stop = asyncio.Event()
        self._state = StreamState.DISCONNECTED
        self._last_message_at = None

    @property
    def state(self) -> StreamState:
        """The stream's state as last reported (``closed`` once its task has ended)."""
        return StreamState.CLOSED if self.failed else self._state

    @property
    def failed(self) -> bool:
        """Whether the streaming task ended without ``stop()`` (a bug: see the log)."""
        task = self._task
        return task is not None and task.done() and not self._stop.is_set()

    @property
    def last_message_at(self) -> float | None:
        """Monotonic time of the last message heard, if any."""
        return self._last_message_at

    def _launch(
        self, sink: StreamSink, run: Coroutine[Any, Any, None], *, name: str, consumer: str
    ) -> None:
        """Run ``run`` as the streaming task, delivering to ``sink``.

        Raises:
            ConfigError: the task already runs for another consumer (``run`` is closed).
        """
        if self._task is not None and not self._task.done():
            run.close()
            raise ConfigError(
                "websocket_client",
                self,
                "already streams for another consumer; "
                f"give each BalanceManager its own {consumer}",
            )
        self._sink = sink
        self._stop.clear()
        self._task = asyncio.create_task(run, name=name)
