"""Oracle store: sync engine outputs into the oracle bucket and seal them as one pack.

Sync is resumable and incremental: an object already present with the same sha256 is skipped, a
different one is a conflict (oracle inputs are truth and are never overwritten). The seal writes
the pack manifest and `_SEALED.json` once; sealing again with the same content is a no-op, with
different content it fails.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fp_platform.contracts.canonical import canonical_json, digest, sha256_file, sha256_hex
from fp_platform.contracts.evidence import ObjectExistsError, utc_now_iso
from fp_platform.substrate.object_store import S3ObjectStore
from fp_platform.world.engine import MANIFEST_NAME as ENGINE_MANIFEST

PACK_MANIFEST = "_pack_manifest.json"
SEALED = "_SEALED.json"
SHA_META = "sha256"


class OracleConflict(RuntimeError):
    """Oracle content differs from what is already stored or sealed."""


@dataclass(frozen=True)
class OracleLayout:
    """Where a run's oracle lives in the oracle bucket (prefixes from the handles registry)."""

    bucket: str
    inputs: str  # engine outputs: <inputs>output_id=<id>/part-*.parquet + the engine manifest
    pack: str  # pack manifest + _SEALED.json
    view_pattern: str  # stream view prefix, with {output_id}

    def view(self, output_id: str) -> str:
        return self.view_pattern.format(output_id=output_id)


def sync(
    store: S3ObjectStore, local_dir: Path, layout: OracleLayout, progress: Callable[[str], None] = lambda _: None
) -> dict:
    """Upload every engine file not already present; returns the seed snapshot."""
    files = sorted(p for p in local_dir.rglob("*") if p.is_file())
    uploaded = skipped = total_bytes = 0
    digests = {}
    for i, path in enumerate(files, 1):
        rel = path.relative_to(local_dir).as_posix()
        key = layout.inputs + rel
        sha = sha256_file(path)
        digests[rel] = sha
        total_bytes += path.stat().st_size
        head = store.head(layout.bucket, key)
        if head is not None:
            if head["metadata"].get(SHA_META) != sha:
                raise OracleConflict(
                    f"s3://{layout.bucket}/{key} exists with different content; oracle inputs are never overwritten"
                )
            skipped += 1
            continue
        try:
            store.put(layout.bucket, key, path.read_bytes(), write_once=True, metadata={SHA_META: sha})
        except ObjectExistsError:  # a concurrent sync got there first: check it wrote the same
            if (store.head(layout.bucket, key) or {}).get("metadata", {}).get(SHA_META) != sha:
                raise OracleConflict(f"s3://{layout.bucket}/{key} raced with different content") from None
            skipped += 1
            continue
        uploaded += 1
        if i % 20 == 0:
            progress(f"oracle sync {i}/{len(files)} files")
    return {
        "object_count": len(files),
        "bytes": total_bytes,
        "uploaded": uploaded,
        "skipped": skipped,
        "digests": digests,
        "inputs_prefix": f"s3://{layout.bucket}/{layout.inputs}",
    }


def build_pack_manifest(store: S3ObjectStore, layout: OracleLayout) -> dict:
    """The pack manifest, from what is in the oracle bucket (not from a local copy)."""
    engine_body = store.get(layout.bucket, layout.inputs + ENGINE_MANIFEST)
    engine = json.loads(engine_body)
    outputs = {}
    for output_id, info in sorted(engine["outputs"].items()):
        files = []
        for f in info["files"]:
            key = f"{layout.inputs}output_id={output_id}/{f['file']}"
            head = store.head(layout.bucket, key)
            if head is None or SHA_META not in head["metadata"]:
                raise OracleConflict(f"{output_id}: s3://{layout.bucket}/{key} missing or unsynced")
            files.append({"key": key, "size": head["size"], "sha256": head["metadata"][SHA_META], "rows": f["rows"]})
        outputs[output_id] = {"rows": info["rows"], "streamed": info["streamed"], "files": files}
    body = {
        "engine_run_id": engine["engine_run_id"],
        "engine_version": engine["engine_version"],
        "params": engine["params"],
        "outputs": outputs,
        "engine_manifest_sha256": sha256_hex(engine_body),
    }
    return {**body, "pack_fingerprint": digest(body)}


def _put_once_or_same(store: S3ObjectStore, bucket: str, key: str, body: bytes, what: str) -> bool:
    """Write once; True if written now, False if the identical object was already there."""
    try:
        store.put(bucket, key, body, write_once=True)
        return True
    except ObjectExistsError:
        if store.get(bucket, key) != body:
            raise OracleConflict(f"{what} s3://{bucket}/{key} already exists with different content") from None
        return False


def seal(store: S3ObjectStore, layout: OracleLayout, manifest: dict) -> dict:
    """Seal the pack: manifest + `_SEALED.json`, each written once."""
    sealed_key = layout.pack + SEALED
    try:
        existing = json.loads(store.get(layout.bucket, sealed_key))
    except FileNotFoundError:
        existing = None
    if existing is not None:
        if existing["pack_fingerprint"] != manifest["pack_fingerprint"]:
            raise OracleConflict(
                f"pack already sealed with fingerprint {existing['pack_fingerprint']}; "
                f"this content has {manifest['pack_fingerprint']}"
            )
        return {**existing, "already_sealed": True}
    manifest_body = canonical_json(manifest)
    _put_once_or_same(store, layout.bucket, layout.pack + PACK_MANIFEST, manifest_body, "pack manifest")
    marker = {
        "pack_fingerprint": manifest["pack_fingerprint"],
        "engine_run_id": manifest["engine_run_id"],
        "manifest_sha256": sha256_hex(manifest_body),
        "sealed_at_utc": utc_now_iso(),
    }
    store.put(layout.bucket, sealed_key, canonical_json(marker), write_once=True)
    return {**marker, "already_sealed": False}


def read_sealed_manifest(store: S3ObjectStore, layout: OracleLayout) -> dict:
    """The sealed pack manifest; fails when the pack is not sealed or the seal does not match."""
    try:
        marker = json.loads(store.get(layout.bucket, layout.pack + SEALED))
        body = store.get(layout.bucket, layout.pack + PACK_MANIFEST)
    except FileNotFoundError as exc:
        raise OracleConflict(f"oracle pack under s3://{layout.bucket}/{layout.pack} is not sealed ({exc})") from None
    if sha256_hex(body) != marker["manifest_sha256"]:
        raise OracleConflict("pack manifest does not match its seal")
    return json.loads(body)


def verify_pack(store: S3ObjectStore, layout: OracleLayout, strict: bool = True) -> list[str]:
    """Problems with the sealed pack: missing objects, wrong sizes, and (strict) wrong sha256."""
    try:
        manifest = read_sealed_manifest(store, layout)
    except OracleConflict as exc:
        return [str(exc)]
    problems = []
    for output_id, info in manifest["outputs"].items():
        for f in info["files"]:
            head = store.head(layout.bucket, f["key"])
            if head is None:
                problems.append(f"{output_id}: {f['key']} missing")
            elif head["size"] != f["size"]:
                problems.append(f"{output_id}: {f['key']} has {head['size']} bytes, sealed {f['size']}")
            elif strict and sha256_hex(store.get(layout.bucket, f["key"])) != f["sha256"]:
                problems.append(f"{output_id}: {f['key']} content differs from its sealed sha256")
    return problems
