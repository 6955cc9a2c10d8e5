"""The Iceberg catalog of the profile (pyiceberg): a SQL catalog in the platform database locally and
on dev_min, Glue on dev_full; table data on the object store. Any ordinary Iceberg client reads it."""

from __future__ import annotations

from pyiceberg.catalog import Catalog, load_catalog

from fp_platform.handles import Handles
from fp_platform.substrate import db
from fp_platform.substrate.secrets import get_secret


def s3_properties(h: Handles) -> dict[str, str]:
    """pyiceberg FileIO settings for the profile's object store (an endpoint and keys only where local)."""
    props = {"s3.region": h.get("AWS_REGION")}
    if h.values.get("S3_ENDPOINT_URL"):
        props |= {
            "s3.endpoint": h.get("S3_ENDPOINT_URL"),
            "s3.access-key-id": get_secret(h, "SSM_S3_ACCESS_KEY_ID_PATH"),
            "s3.secret-access-key": get_secret(h, "SSM_S3_SECRET_ACCESS_KEY_PATH"),
        }
    return props


def catalog(h: Handles) -> Catalog:
    kind = h.get("ICEBERG_CATALOG_TYPE")
    props = {"type": kind, "warehouse": h.get("ICEBERG_WAREHOUSE_URI"), **s3_properties(h)}
    if kind == "sql":
        props["uri"] = db.url(h, driver="psycopg", role=db.OWNER)  # pyiceberg creates and rewrites its catalog tables
    return load_catalog(h.get("ICEBERG_CATALOG_NAME"), **props)


def table_identifier(h: Handles, table_key: str) -> str:
    return f"{h.get('ICEBERG_NAMESPACE')}.{h.get(table_key)}"
