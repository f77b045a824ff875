"""Tests of the exchange simulator (a package: its module names cannot clash elsewhere)."""
