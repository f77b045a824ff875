"""Kraken, the reference venue: its sans-I/O protocol and its asyncio clients.

``protocol/`` is shared by the clients (which sign) and the simulator (which
verifies); ``rest_client`` and ``ws_client`` implement the source interfaces of
:mod:`balance_manager.core.sources`. The facts the code relies on are in
``docs/kraken.md``.
"""
