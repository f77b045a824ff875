"""The sans-I/O core: amounts, models, cache, validation, history maths, resilience.

Nothing in this package imports asyncio, sockets, HTTP or database modules, and
nothing reads the clock: time comes in as an argument (``now``).
"""
