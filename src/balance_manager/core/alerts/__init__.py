"""Alerts: rules that watch the balances over time, and the engine that fires and resolves them.

Sans-I/O like :mod:`balance_manager.core.validation`: rules are small callables
looking at an :class:`~balance_manager.core.alerts.model.AlertContext` (``now``
comes in), and :class:`~balance_manager.core.alerts.engine.AlertEngine` turns
their conditions into alerts that fire once, respect a cool-down and resolve
when the condition clears. ``balance_manager.service.alerts`` runs them.
"""
