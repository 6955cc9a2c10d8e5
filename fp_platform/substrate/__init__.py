"""Substrate clients (object store, bus, database, secrets) and the local stack that serves them."""
