"""The venue-neutral asyncio services: the manager, its callback dispatcher and its history."""
