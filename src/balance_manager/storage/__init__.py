"""Where balances and their history are kept: store interfaces and backends (memory, SQLite)."""
