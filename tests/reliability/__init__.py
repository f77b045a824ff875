"""Reliability and security tests (faults, crashes, bad input, concurrency, soak).

See docs/reliability.md.
"""
