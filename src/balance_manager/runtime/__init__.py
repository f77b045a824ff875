"""Asyncio building blocks for services and venue clients: clock, network helpers, retries."""
