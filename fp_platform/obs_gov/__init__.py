"""Obs/Gov plane (P11): the single-writer reporter, reconciliation, replay anchors, environment conformance,
the governance log, drills' outcomes and the run report."""
