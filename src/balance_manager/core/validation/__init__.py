"""The seven validation rules and the validator that runs them (sans-I/O)."""
