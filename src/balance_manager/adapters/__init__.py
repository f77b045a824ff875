"""The asyncio layer for each exchange: sockets, tasks and timers, no business logic."""
