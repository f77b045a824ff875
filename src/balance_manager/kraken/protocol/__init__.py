"""Kraken's protocol, sans-I/O.

Signing, assets, errors, REST and WebSocket v2 messages, the session, holds and limits.
"""
