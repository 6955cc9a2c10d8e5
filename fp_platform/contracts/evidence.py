"""The evidence writer: every phase's proof goes through here.

Truth files are written once (`If-None-Match: *`): a second write of the same name fails, even by
the same run. Derived summaries may be rewritten (a rerun regenerates them). Every file carries the
fields of DESIGN.md §4 so a gate can check it without knowing who wrote it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from fp_platform.contracts.canonical import canonical_json

REQUIRED_FIELDS = ("platform_run_id", "written_at_utc", "phase_id")


class ObjectExistsError(Exception):
    """A write-once object already exists; the store refused to overwrite it."""


class EvidenceError(Exception):
    """Evidence is missing, malformed, or conflicts with what is already written."""


class ObjectStore(Protocol):
    def put(self, bucket: str, key: str, body: bytes, *, write_once: bool) -> None: ...

    def get(self, bucket: str, key: str) -> bytes: ...

    def exists(self, bucket: str, key: str) -> bool: ...

    def list_keys(self, bucket: str, prefix: str) -> list[str]: ...


def utc_now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class EvidenceWriter:
    """Writes and reads one run's evidence bundle under `<bucket>/<run_root>`."""

    store: ObjectStore
    bucket: str
    run_root: str
    platform_run_id: str

    def key(self, name: str) -> str:
        if name.startswith("/") or ".." in name.split("/"):
            raise EvidenceError(f"evidence name must be relative: {name!r}")
        return f"{self.run_root}{name}"

    def uri(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.key(name)}"

    def _stamp(self, doc: dict[str, Any], phase_id: str) -> dict[str, Any]:
        run_id = doc.get("platform_run_id", self.platform_run_id)
        if run_id != self.platform_run_id:
            raise EvidenceError(f"evidence for {run_id} cannot go into run {self.platform_run_id}")
        stamped = {**doc, "platform_run_id": run_id, "phase_id": phase_id}
        stamped.setdefault("written_at_utc", utc_now_iso())
        return stamped

    def write_truth(self, name: str, doc: dict[str, Any], *, phase_id: str) -> dict[str, Any]:
        """Write once; raises EvidenceError if `name` already exists for this run."""
        stamped = self._stamp(doc, phase_id)
        try:
            self.store.put(self.bucket, self.key(name), canonical_json(stamped), write_once=True)
        except ObjectExistsError:
            raise EvidenceError(f"truth evidence {self.uri(name)} already exists; it is write-once") from None
        return stamped

    def write_summary(self, name: str, doc: dict[str, Any], *, phase_id: str) -> dict[str, Any]:
        """Write a derived summary; a rerun replaces it."""
        stamped = self._stamp(doc, phase_id)
        self.store.put(self.bucket, self.key(name), canonical_json(stamped), write_once=False)
        return stamped

    def exists(self, name: str) -> bool:
        return self.store.exists(self.bucket, self.key(name))

    def read(self, name: str) -> dict[str, Any]:
        """Read and check the required fields; a missing or malformed file is an EvidenceError."""
        try:
            raw = self.store.get(self.bucket, self.key(name))
        except FileNotFoundError:
            raise EvidenceError(f"evidence {self.uri(name)} is missing") from None
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise EvidenceError(f"evidence {self.uri(name)} is not JSON: {exc}") from None
        missing = [f for f in REQUIRED_FIELDS if f not in doc]
        if missing:
            raise EvidenceError(f"evidence {self.uri(name)} lacks {', '.join(missing)}")
        if doc["platform_run_id"] != self.platform_run_id:
            raise EvidenceError(f"evidence {self.uri(name)} belongs to {doc['platform_run_id']}")
        return doc

    def list(self) -> list[str]:
        """Names of this run's evidence files, relative to the run root."""
        return sorted(k[len(self.run_root) :] for k in self.store.list_keys(self.bucket, self.run_root))

    def read_back(self) -> tuple[list[str], list[str]]:
        """This run's JSON evidence files, and why each one that does not read back (`read`) failed: the proof,
        at P16 and at P17, that the evidence outlives the run's runtime."""
        names = [n for n in self.list() if n.endswith(".json")]
        problems = []
        for name in names:
            try:
                self.read(name)
            except EvidenceError as exc:
                problems.append(str(exc))
        return names, problems
