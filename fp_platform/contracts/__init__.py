"""Contracts shared by every plane: ids, canonical JSON and hashes, the envelope, evidence."""
