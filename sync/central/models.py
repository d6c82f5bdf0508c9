"""Central's tables (SQLAlchemy 2). The schema itself is created and changed only by the Alembic
migrations in `migrations/`; a test checks that these models and the migrations agree.

Records are generic: one row per (centre, table, key) holding the latest document, so a new
kiosk table syncs without schema work. Ticket events get their own immutable projection, because
they are what analysts query (waits, service times) and they must never be overwritten.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer,
                        String, Text, TypeDecorator)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

UTC = dt.timezone.utc

# PostgreSQL gets JSONB (queryable by analysts), SQLite plain JSON text.
Json = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always read back as an aware UTC datetime (SQLite drops zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        """Refuse naive datetimes; store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        """Hand back an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of central's tables."""


class Centre(Base):
    """A public service centre."""

    __tablename__ = "centres"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # {"ar", "ckb", "en"} (any may be missing): the name in each language; `name` is the fallback
    names: Mapped[Any] = mapped_column(Json, nullable=True)


class Device(Base):
    """A kiosk machine enrolled for a centre, with the public half of its signing key."""

    __tablename__ = "devices"
    device_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    centre: Mapped[str] = mapped_column(ForeignKey("centres.code"), index=True)
    label: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # active | revoked
    enrolled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_push_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_pull_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    clock_offset_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    head_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class DeviceCursor(Base):
    """How far central has durably applied a device's journal (advanced with each batch)."""

    __tablename__ = "device_cursors"
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.device_id"), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hlc: Mapped[str] = mapped_column(String(40), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Enrolment(Base):
    """A one-time enrolment code (only its hash is kept), bound to a centre and a device label."""

    __tablename__ = "enrolments"
    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    centre: Mapped[str] = mapped_column(ForeignKey("centres.code"))
    label: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    device_id: Mapped[str | None] = mapped_column(String(26), nullable=True)


class Nonce(Base):
    """Nonces seen recently per device: a request is accepted once."""

    __tablename__ = "sync_nonces"
    device_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)


class Record(Base):
    """The latest state of one kiosk document (ticket, request, receipt, audit entry ...)."""

    __tablename__ = "sync_records"
    centre: Mapped[str] = mapped_column(String(32), primary_key=True)
    tbl: Mapped[str] = mapped_column(String(63), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(26))
    seq: Mapped[int] = mapped_column(BigInteger)
    hlc: Mapped[str] = mapped_column(String(40))
    doc: Mapped[Any] = mapped_column(Json, nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # the service day of a document that has one (tickets, feedback ...): reports read days by it
    day: Mapped[str | None] = mapped_column(String(10), nullable=True)

    __table_args__ = (Index("ix_sync_records_changed", "centre", "tbl", "updated_at"),
                      Index("ix_sync_records_day", "centre", "tbl", "day"))


class TicketEventRow(Base):
    """One immutable ticket event, inserted once by (ticket, index)."""

    __tablename__ = "ticket_events"
    ticket_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    centre: Mapped[str] = mapped_column(String(32))
    device_id: Mapped[str] = mapped_column(String(26))
    state: Mapped[str] = mapped_column(String(32))
    at: Mapped[str] = mapped_column(String(40))  # as recorded by the kiosk's clock
    counter: Mapped[str | None] = mapped_column(String(64), nullable=True)
    by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    event: Mapped[Any] = mapped_column(Json)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_ticket_events_centre_at", "centre", "at"),)


class Quarantined(Base):
    """A pushed change that failed validation: acknowledged, kept for a person to look at."""

    __tablename__ = "sync_quarantine"
    device_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    centre: Mapped[str] = mapped_column(String(32), index=True)
    tbl: Mapped[str | None] = mapped_column(String(63), nullable=True)
    key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    reason: Mapped[str] = mapped_column(String(400))
    change: Mapped[str] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class InboundBatch(Base):
    """One accepted push, for tracing what arrived when."""

    __tablename__ = "sync_batches"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(String(26), index=True)
    from_seq: Mapped[int] = mapped_column(BigInteger)
    to_seq: Mapped[int] = mapped_column(BigInteger)
    applied: Mapped[int] = mapped_column(Integer)
    quarantined: Mapped[int] = mapped_column(Integer)
    body_sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ConfigDoc(Base):
    """Central's current configuration document (services, counters, staff ...) for a centre."""

    __tablename__ = "config_docs"
    centre: Mapped[str] = mapped_column(ForeignKey("centres.code"), primary_key=True)
    tbl: Mapped[str] = mapped_column(String(63), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    doc: Mapped[Any] = mapped_column(Json, nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # config: from config-load, which also removes it; system: central's own (trust list, decisions)
    source: Mapped[str] = mapped_column(String(16), server_default="config")


class ConfigChange(Base):
    """The configuration change feed kiosks pull from (tombstones included)."""

    __tablename__ = "config_changes"
    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    centre: Mapped[str] = mapped_column(String(32))
    tbl: Mapped[str] = mapped_column(String(63))
    key: Mapped[str] = mapped_column(String(128))
    op: Mapped[str] = mapped_column(String(8))  # put | del
    doc: Mapped[Any] = mapped_column(Json, nullable=True)
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_config_changes_centre_seq", "centre", "seq"),)


class Operator(Base):
    """A ministry operator allowed to see the central pages."""

    __tablename__ = "operators"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class LoginThrottle(Base):
    """Wrong passwords per operator name and per client address (kiosk.domain.throttle rules),
    in the database because several gunicorn workers must share one count."""

    __tablename__ = "login_throttle"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # "account:NAME" | "address:IP"
    window_start: Mapped[float] = mapped_column(Float)
    window_failures: Mapped[int] = mapped_column(Integer)
    level: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[float] = mapped_column(Float)
    locked_until: Mapped[float] = mapped_column(Float, index=True)


class Appointment(Base):
    """A booking of a slot at a centre. The phone number is kept only until the reminder is sent
    (or the slot has passed), and only when reminders are switched on."""

    __tablename__ = "appointments"
    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    centre: Mapped[str] = mapped_column(ForeignKey("centres.code"))
    service: Mapped[str] = mapped_column(String(16))
    start_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    end_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(String(16))  # booked | cancelled
    lang: Mapped[str] = mapped_column(String(8))
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    qr: Mapped[str] = mapped_column(Text)
    booked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reminded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (Index("ix_appointments_slot", "centre", "service", "start_at"),)


class AppointmentSlot(Base):
    """How many live bookings a slot holds: the one row concurrent bookings of a slot update, with
    a condition on the capacity, so a slot is never overbooked (PostgreSQL and SQLite alike)."""

    __tablename__ = "appointment_slots"
    centre: Mapped[str] = mapped_column(String(32), primary_key=True)
    service: Mapped[str] = mapped_column(String(16), primary_key=True)
    start_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), primary_key=True)
    booked: Mapped[int] = mapped_column(Integer)


class RateLimit(Base):
    """Requests per client address and minute on central's public endpoints, in the database
    because several gunicorn workers must share one count."""

    __tablename__ = "rate_limits"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # "book:ADDRESS" ...
    window: Mapped[int] = mapped_column(BigInteger, index=True)      # minutes since 1970
    hits: Mapped[int] = mapped_column(Integer)


class ConfigAudit(Base):
    """Who changed which configuration document of a centre, when, and what changed: one row per
    document a configuration page or a `config-load` put into the feed. A PIN is never recorded,
    only that it was reset."""

    __tablename__ = "config_audit"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    centre: Mapped[str] = mapped_column(String(32))
    tbl: Mapped[str] = mapped_column(String(63))
    key: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(16))  # create | update | delete
    actor: Mapped[str] = mapped_column(String(64))   # operator name, or "config-load"
    via: Mapped[str] = mapped_column(String(16))     # page | config-load
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    seq: Mapped[int] = mapped_column(BigInteger)     # the feed change it published
    # {field: [before, after]}; a PIN reset is {"pin": ["…", "reset"]}
    changes: Mapped[Any] = mapped_column(Json)

    __table_args__ = (Index("ix_config_audit_centre_at", "centre", "at"),)
class AuditEntry(Base):
    """What central keeps of each audit entry a centre pushed, inserted once and never changed:
    the links a checkpoint check needs (a re-sent entry is compared with this, not written over it)."""

    __tablename__ = "audit_entries"
    centre: Mapped[str] = mapped_column(String(32), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    entry_id: Mapped[str] = mapped_column(String(128))
    prev: Mapped[str] = mapped_column(String(256))
    hash: Mapped[str] = mapped_column(String(256))
    digest: Mapped[str] = mapped_column(String(64))    # SHA-256 of the content as received
    intact: Mapped[bool] = mapped_column(Boolean)      # the content matched its own hash
    device_id: Mapped[str] = mapped_column(String(26))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_audit_entries_entry", "centre", "entry_id"),)


class AuditCheckpoint(Base):
    """A signed head of a centre's audit chain (kiosk.domain.audit.make_checkpoint), as received.
    `status` is pending (entries it covers have not all arrived), ok or flagged."""

    __tablename__ = "audit_checkpoints"
    centre: Mapped[str] = mapped_column(String(32), primary_key=True)
    checkpoint_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    device_id: Mapped[str] = mapped_column(String(26))
    n: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[str] = mapped_column(String(40))          # the kiosk's clock
    seq: Mapped[int] = mapped_column(BigInteger)          # the device's journal is complete to here
    doc: Mapped[Any] = mapped_column(Json)                # as signed, signature included
    status: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # how far a long segment has been checked (a bounded part per request): entry and its hash
    checked_n: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    checked_hash: Mapped[str | None] = mapped_column(String(256), nullable=True)

    __table_args__ = (Index("ix_audit_checkpoints_centre_n", "centre", "n"),
                      Index("ix_audit_checkpoints_status", "status", "centre"))


class AuditFlag(Base):
    """A gap, altered entry or fork found in a centre's audit chain. Never deleted or changed: an
    operator sees every one (`fingerprint` keeps a finding seen again from being stored twice)."""

    __tablename__ = "audit_flags"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    centre: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))         # gap | altered | fork
    n: Mapped[int] = mapped_column(BigInteger)
    device_id: Mapped[str | None] = mapped_column(String(26), nullable=True)
    detail: Mapped[str] = mapped_column(String(1000))
    fingerprint: Mapped[str] = mapped_column(String(64))
    flagged_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ux_audit_flags_fingerprint", "centre", "fingerprint", unique=True),)
