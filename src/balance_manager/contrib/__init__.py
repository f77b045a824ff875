"""Optional integrations (each needs an extra), such as Prometheus metrics."""
