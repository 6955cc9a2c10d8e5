"""Real-time decision loop: the worker base and the workers of the rtdl_core (and, later, decision) packs."""
