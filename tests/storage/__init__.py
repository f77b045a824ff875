"""Tests of balance_manager.storage: the history stores and the latest-balance store."""
