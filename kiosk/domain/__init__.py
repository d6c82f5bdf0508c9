"""The centre's rules in plain Python: tickets, queue policy, audit chain, errors (no I/O here)."""
