"""Helpers for receipt tests: a sample receipt, a trust list, the published vectors."""
from __future__ import annotations

import datetime as dt
import importlib.util
import json
from pathlib import Path

from kiosk.domain import receipts
from kiosk.domain.receipts import Receipt, ReceiptStatus
from kiosk.domain.trustlist import TrustedKey, TrustList

UTC = dt.timezone.utc
VECTORS_DIR = Path(__file__).resolve().parents[1] / "vectors" / "receipts"
HOST = "V.EXAMPLE.IQ"
ISSUED_AT = dt.datetime(2026, 11, 22, 9, 15, tzinfo=UTC)
NOW = ISSUED_AT + dt.timedelta(hours=1)
RECEIPT_ID = "01KAR7X3M9Q4ZP2B6V8N5C1DHW"
PEPPER = b"pepper for tests only, 32 bytes."


def load_maker():
    """The vector generator script as a module (it lives beside the vectors, not in a package)."""
    spec = importlib.util.spec_from_file_location("receipt_vector_maker", VECTORS_DIR / "make_vectors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def vector_files() -> list[str]:
    """Vector file names in published order (from the index)."""
    return [entry["file"] for entry in json.loads((VECTORS_DIR / "index.json").read_text(encoding="utf-8"))]


def load_vector(name: str) -> dict:
    """One vector as published."""
    return json.loads((VECTORS_DIR / name).read_text(encoding="utf-8"))


def make_receipt(**overrides) -> Receipt:
    """A valid receipt with any field replaced."""
    fields = {
        "receipt_id": RECEIPT_ID,
        "centre": "NIN-MSL-03",
        "service": "PS-BIRTH",
        "ticket": "B-042",
        "issued_at": ISSUED_AT,
        "due_at": ISSUED_AT + dt.timedelta(hours=72),
        "fee_iqd": 25000,
        "status": ReceiptStatus.OPEN,
        "citizen_ref": receipts.citizen_ref_hash(PEPPER, "19901234567", RECEIPT_ID),
        "expires_at": ISSUED_AT + dt.timedelta(days=365),
    }
    fields.update(overrides)
    return Receipt(**fields)


def listing(centre_key, **overrides) -> TrustList:
    """A trust list enrolling `centre_key` for NIN-MSL-03 over 2026-2027, with any field replaced."""
    fields = {
        "sequence": 5,
        "issued_at": dt.datetime(2026, 11, 1, tzinfo=UTC),
        "verify_host": HOST,
        "keys": (TrustedKey.from_public_key("NIN-MSL-03", centre_key.public_key(),
                                            dt.datetime(2026, 1, 1, tzinfo=UTC),
                                            dt.datetime(2027, 1, 1, tzinfo=UTC)),),
    }
    fields.update(overrides)
    return TrustList(**fields)
