"""Operating the platform: run pinning, the Dagster instance, packs and supervisors."""
