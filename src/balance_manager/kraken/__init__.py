"""Kraken's protocol, sans-I/O: signing, asset names, REST and WebSocket v2 messages.

Built to ``shared/kraken/PROTOCOL.md``; shared by the clients (which sign) and
the simulator (which verifies).
"""
