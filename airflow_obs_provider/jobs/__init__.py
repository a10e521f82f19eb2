"""Job entry points: turn (config, tenant, window) into one exactly-once ledgered write."""
