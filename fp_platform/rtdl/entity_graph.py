"""IEG projector: the identity/entity graph of a run in Postgres, and the queries OFP/DF ask of it.

Entities (customer, card, device, ip, merchant) and edges between them, each with first/last seen in
event time, a sighting count and the origin offset of its first sighting. Within a batch sightings
are folded in Python, then upserted set-wise; min/max/sum commute, so the graph does not depend on
the order partitions were read in.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from fp_platform.contracts import components
from fp_platform.substrate import db
from fp_platform.substrate.worker import BusRecord, Worker

# (entity type, payload field) per event class, and the edges drawn between them.
ENTITY_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "context.arrival_entities": (
        ("customer", "customer_id"),
        ("card", "card_id"),
        ("device", "device_id"),
        ("ip", "ip"),
        ("merchant", "merchant_id"),
    ),
    "traffic.fraud": (("customer", "customer_id"), ("card", "card_id"), ("merchant", "merchant_id")),
}
EDGES: dict[str, tuple[tuple[str, str], ...]] = {
    "context.arrival_entities": (("customer", "card"), ("card", "device"), ("card", "ip"), ("device", "ip")),
    "traffic.fraud": (("card", "merchant"), ("customer", "merchant")),
}


@dataclass
class Sighting:
    first: tuple  # (ts, topic, partition, offset): the earliest sighting and its origin
    last: str
    count: int = 1

    def add(self, key: tuple, ts: str) -> None:
        self.first = min(self.first, key)
        self.last = max(self.last, ts)
        self.count += 1


def _fold(target: dict, ident: tuple, r: BusRecord) -> None:
    key = (r.ts, *r.origin)
    if (s := target.get(ident)) is None:
        target[ident] = Sighting(key, r.ts)
    else:
        s.add(key, r.ts)


_EARLIER = (
    "(EXCLUDED.first_seen, EXCLUDED.origin_topic, EXCLUDED.origin_partition, EXCLUDED.origin_offset)"
    " < (t.first_seen, t.origin_topic, t.origin_partition, t.origin_offset)"
)
# min/max/sum commute; the origin follows the earliest sighting
_MERGE = (
    " first_seen = LEAST(t.first_seen, EXCLUDED.first_seen),"
    " last_seen = GREATEST(t.last_seen, EXCLUDED.last_seen), sightings = t.sightings + EXCLUDED.sightings, "
    + ", ".join(
        f"{c} = CASE WHEN {_EARLIER} THEN EXCLUDED.{c} ELSE t.{c} END"
        for c in ("origin_topic", "origin_partition", "origin_offset")
    )
)


class IegProjector(Worker):
    identity = components.ENTITY_GRAPH

    def apply(self, conn: psycopg.Connection, records: list[BusRecord]) -> None:
        entities: dict[tuple[str, str], Sighting] = {}
        edges: dict[tuple[str, str, str, str], Sighting] = {}
        for r in records:
            cls, p = r.envelope["event_class"], r.payload
            ids = {etype: str(p[f]) for etype, f in ENTITY_FIELDS.get(cls, ())}
            for etype, eid in ids.items():
                _fold(entities, (etype, eid), r)
            for a, b in EDGES.get(cls, ()):
                _fold(edges, (a, ids[a], b, ids[b]), r)
        db.stage(
            conn,
            "ieg_entities_in",
            "entity_type text, entity_id text, first_seen timestamptz, last_seen"
            " timestamptz, sightings bigint, origin_topic text, origin_partition int, origin_offset bigint",
            ((t, i, s.first[0], s.last, s.count, *s.first[1:]) for (t, i), s in entities.items()),
        )
        conn.execute(
            "INSERT INTO ieg_entities AS t SELECT %s, * FROM ieg_entities_in ORDER BY entity_type, entity_id"
            " ON CONFLICT (platform_run_id, entity_type, entity_id) DO UPDATE SET" + _MERGE,
            (self.run_id,),
        )
        db.stage(
            conn,
            "ieg_edges_in",
            "src_type text, src_id text, dst_type text, dst_id text, first_seen"
            " timestamptz, last_seen timestamptz, sightings bigint, origin_topic text, origin_partition int,"
            " origin_offset bigint",
            ((*k, s.first[0], s.last, s.count, *s.first[1:]) for k, s in edges.items()),
        )
        conn.execute(
            "INSERT INTO ieg_edges AS t SELECT %s, * FROM ieg_edges_in ORDER BY src_type, src_id, dst_type, dst_id"
            " ON CONFLICT (platform_run_id, src_type, src_id, dst_type, dst_id) DO UPDATE SET" + _MERGE,
            (self.run_id,),
        )
        self.stats.counters["entity_upserts"] += len(entities)
        self.stats.counters["edge_upserts"] += len(edges)


# --- queries (used by OFP/DF and the operator) ---------------------------------------------------
_OVERLAPS = (
    " AND (%(u)s::timestamptz IS NULL OR first_seen <= %(u)s) AND (%(s)s::timestamptz IS NULL OR last_seen >= %(s)s)"
)


def linked(
    conn: psycopg.Connection,
    run_id: str,
    entity_type: str,
    entity_id: str,
    other_type: str,
    since: str | None = None,
    until: str | None = None,
) -> list[dict]:
    """Entities of `other_type` linked to (entity_type, entity_id), in either edge direction, whose
    sighting interval overlaps [since, until] (event time; open ends when None)."""
    half = (
        "SELECT {far}_id, first_seen, last_seen, sightings FROM ieg_edges WHERE platform_run_id = %(r)s"
        " AND {near}_type = %(t)s AND {near}_id = %(i)s AND {far}_type = %(o)s" + _OVERLAPS
    )
    rows = conn.execute(
        half.format(near="src", far="dst") + " UNION ALL " + half.format(near="dst", far="src") + " ORDER BY 2, 1",
        {"r": run_id, "t": entity_type, "i": entity_id, "o": other_type, "s": since, "u": until},
    ).fetchall()
    return [{"id": r[0], "first_seen": r[1], "last_seen": r[2], "sightings": r[3]} for r in rows]


def devices_per_card(
    conn: psycopg.Connection, run_id: str, card_id: str, since: str | None = None, until: str | None = None
) -> int:
    return len(linked(conn, run_id, "card", card_id, "device", since, until))


def cards_per_device(
    conn: psycopg.Connection, run_id: str, device_id: str, since: str | None = None, until: str | None = None
) -> int:
    return len(linked(conn, run_id, "device", device_id, "card", since, until))
