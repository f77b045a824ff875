"""Shared balances on Redis: one leader per account, followers, and fund reservations.

Nothing here is needed to use the library in one process; it needs the
``redis`` extra (``pip install 'balance-manager[redis]'``). See ``docs/shared.md``.
"""
