"""Use cases of requests (cases) and their signed receipts: register a case while serving a ticket,
issue and print its receipt, change its status, list cases by due date, verify a scanned receipt,
the monthly report; and the receipt slip builder.

Tables: `requests` (one document per case) and `receipts` (one per signed receipt) belong to the
kiosk and are pushed to central. Central's decisions come back through the pull as `settings`
documents `case_status:<case id>` (central is their only writer) and are merged when a case is
shown; the signed trust list comes back as `settings/trust_list` and is opened under the pinned
root before use. Confidential fields (contact, notes, rejection reasons, referral details) are
sealed by the vault before they reach the store; the citizen reference is kept only as a keyed hash.
"""
from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import io
import logging
import re
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from flask_babel import force_locale, gettext, lazy_gettext

from kiosk import keys, services
from kiosk.clock import iso, parse_iso
from kiosk.domain import cases as domain
from kiosk.domain import receipts, trustlist
from kiosk.domain.cases import Kind, Status
from kiosk.domain.errors import InvalidTransition, KioskError, NotFound, ValidationFailed
from kiosk.ids import new_ulid
from sync.files import private_dir, write_atomic
from kiosk.vault import Vault, VaultError, open_vault

log = logging.getLogger(__name__)

CASES = "requests"
RECEIPTS = "receipts"
STATUS_PREFIX = "case_status:"
TRUST_LIST_SETTING = "trust_list"
PROVIDERS_SETTING = "providers"
RECEIPTS_SETTING = "receipts"
# A referral's receipt names no service: the QR is readable by anyone, and which help a person
# sought is confidential.
REFERRAL_RECEIPT_SERVICE = "GEN"
DEFAULT_VALID_DAYS = 365
SERVING_STATES = ("called", "serving")
MAX_CONTACT = 200
MAX_NOTES = 2000
MAX_DETAILS = 2000
_REFERENCE_RE = re.compile(r"^[A-Z0-9]{4,32}$")
_ARABIC_SCRIPT = re.compile(r"[\u0600-\u06FF]")

KIND_TEXTS = {
    "request": lazy_gettext("Request"),
    "inquiry": lazy_gettext("Inquiry"),
    "referral": lazy_gettext("Referral"),
}
STATUS_TEXTS = {
    "open": lazy_gettext("In progress"),
    "completed": lazy_gettext("Completed"),
    "rejected": lazy_gettext("Rejected"),
    "referred": lazy_gettext("Referred"),
}
SECTOR_TEXTS = {
    "housing": lazy_gettext("Housing"),
    "vocational_training": lazy_gettext("Vocational training"),
    "education": lazy_gettext("Education"),
    "legal_aid": lazy_gettext("Legal aid"),
    "health": lazy_gettext("Health"),
    "psychosocial": lazy_gettext("Psychosocial support"),
    "livelihoods": lazy_gettext("Livelihoods"),
    "other": lazy_gettext("Other"),
}


class ReceiptUnavailable(KioskError):
    """A receipt cannot be signed now (no verification host yet, or the signing key is unusable)."""

    code, status = "receipt_unavailable", 503


# -- collaborators kept per data directory ---------------------------------------------------------

_vaults: dict[Path, Vault] = {}
_vault_lock = threading.Lock()


def data_dir(c: services.Centre) -> Path:
    """The centre's data directory (the store's)."""
    return Path(c.store.data_dir)


def vault(c: services.Centre) -> Vault:
    """The centre's vault (its data key is made on first use)."""
    path = data_dir(c)
    with _vault_lock:
        found = _vaults.get(path)
        if found is None:
            found = _vaults[path] = open_vault(path)
        return found


@dataclass
class _TrustCache:
    """The last trust list opened for a data directory, keyed by the bytes it was opened from."""

    key: tuple = ()
    trust_list: trustlist.TrustList | None = None


_trust: dict[Path, _TrustCache] = {}
_trust_lock = threading.Lock()


def trust_list_path(c: services.Centre) -> Path:
    """DATA/sync/trust-list.cbor: the accepted list, as the command-line verifier reads it."""
    return data_dir(c) / keys.TRUST_LIST_PATH


def current_trust_list(c: services.Centre) -> trustlist.TrustList | None:
    """The accepted trust list, after taking a newer one pulled from central if it opens under the
    pinned root; None when no list or no pinned root is there yet.

    A pulled list that is refused (rolled back, forged, damaged) never replaces the accepted one:
    the kiosk keeps verifying with what it has and logs the reason."""
    path = trust_list_path(c)
    try:
        stored = path.read_bytes()
    except FileNotFoundError:
        stored = b""
    except OSError as exc:
        log.error("cannot read the trust list %s: %s", path, exc.strerror)
        stored = b""
    pulled_doc = c.store.get("settings", TRUST_LIST_SETTING) or {}
    pulled_b64 = pulled_doc.get("signed_base64")
    try:
        pinned_at = keys.pinned_roots_path(data_dir(c)).stat().st_mtime_ns
    except OSError:
        pinned_at = None
    # opened again only when the stored list, the pulled one or the pinned root changes
    key = (hashlib.sha256(stored).digest(), pulled_b64 if isinstance(pulled_b64, str) else None, pinned_at)
    with _trust_lock:
        cache = _trust.setdefault(data_dir(c), _TrustCache())
        if cache.key == key:
            return cache.trust_list
        cache.key, cache.trust_list = key, _open_trust(c, path, stored, key[1])
        return cache.trust_list


def _open_trust(c: services.Centre, path: Path, stored: bytes, pulled_b64: str | None) -> trustlist.TrustList | None:
    """Open the stored list, then try the pulled one over it (see current_trust_list)."""
    try:
        roots = keys.load_pinned_root_keys(data_dir(c))
    except keys.KeyFileError as exc:
        log.warning("receipts cannot be verified here: %s", exc)
        return None
    accepted = None
    if stored:
        try:
            accepted = trustlist.open_trust_list(stored, roots)
        except trustlist.TrustListError as exc:
            log.error("the stored trust list %s is refused (%s); waiting for a good one from central", path, exc.reason)
    if pulled_b64 is None:
        return accepted
    try:
        raw = base64.b64decode(pulled_b64, validate=True)
    except ValueError:
        log.error("the trust list pulled from central is not base64; keeping the current one")
        return accepted
    if raw == stored and accepted is not None:
        return accepted
    try:
        newer = trustlist.open_trust_list(raw, roots, accepted_sequence=accepted.sequence if accepted else None)
    except trustlist.TrustListError as exc:
        log.warning("keeping trust list %s: the one pulled from central is refused (%s)",
                    accepted.sequence if accepted else "none", exc.reason)
        return accepted
    private_dir(path.parent)
    write_atomic(path, raw)
    log.info("accepted trust list %d from central", newer.sequence)
    return newer


# -- configuration read by the use cases -----------------------------------------------------------

def providers(c: services.Centre) -> list[dict]:
    """The provider directory (`settings/providers`): id, names, sector, contact; malformed entries skipped."""
    doc = c.store.get("settings", PROVIDERS_SETTING) or {}
    out = []
    for entry in doc.get("providers", []) if isinstance(doc.get("providers"), list) else []:
        if (isinstance(entry, dict) and receipts.is_code(entry.get("id")) and isinstance(entry.get("names"), dict)
                and entry.get("sector") in domain.SECTORS):
            out.append({"id": entry["id"], "names": entry["names"], "sector": entry["sector"],
                        "contact": str(entry.get("contact") or "")})
        else:
            log.warning("skipping a malformed entry of settings/providers")
    return sorted(out, key=lambda p: (p["sector"], p["id"]))


def get_provider(c: services.Centre, provider_id: str) -> dict:
    """One provider of the directory; ValidationFailed when it is not listed."""
    found = next((p for p in providers(c) if p["id"] == provider_id), None)
    if found is None:
        raise ValidationFailed("unknown provider", {"provider": "choose a provider from the directory"})
    return found


def _receipt_settings(c: services.Centre) -> dict:
    """`settings/receipts` from central: verify_host (fallback) and valid_days."""
    return c.store.get("settings", RECEIPTS_SETTING) or {}


# -- input -----------------------------------------------------------------------------------------

def normalise_reference(value: object) -> str:
    """A citizen reference (ID card or document number) as hashed: digits of any script as 0-9,
    letters upper case, spaces and dashes dropped; ValidationFailed when it is not 4-32 letters/digits."""
    text = unicodedata.normalize("NFKC", value if isinstance(value, str) else "")
    text = "".join(str(unicodedata.digit(ch)) if ch.isdigit() else ch for ch in text)
    text = re.sub(r"[\s\-/.]", "", text).upper()
    if not _REFERENCE_RE.fullmatch(text):
        raise ValidationFailed("invalid citizen reference",
                               {"reference": "4 to 32 letters A-Z or digits (ID card or document number)"})
    return text


def _clean_text(value: object, name: str, limit: int, *, multiline: bool) -> str:
    """Optional free text: trimmed, no control characters (newlines only where allowed), bounded."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationFailed("invalid text", {name: "must be text"})
    text = unicodedata.normalize("NFC", value.replace("\r\n", "\n")).strip()
    allowed = {"\n", "\t"} if multiline else set()
    if any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in text):
        raise ValidationFailed("invalid text", {name: "contains control characters"})
    if len(text) > limit:
        raise ValidationFailed("text too long", {name: f"at most {limit} characters"})
    return text


def _documents(service: dict, chosen: object) -> list[dict]:
    """The service's documents ticked on the checklist (by index), as configured now."""
    configured = service.get("documents") or []
    if chosen is None:
        return []
    if not isinstance(chosen, (list, tuple)) or len(chosen) > len(configured):
        raise ValidationFailed("invalid documents", {"documents": "tick documents from the service's list"})
    picked = []
    for item in chosen:
        index = int(item) if isinstance(item, str) and item.isascii() and item.isdigit() else item
        if type(index) is not int or not 0 <= index < len(configured) or index in picked:
            raise ValidationFailed("invalid documents", {"documents": "tick documents from the service's list"})
        picked.append(index)
    return [configured[i] for i in sorted(picked)]


# -- register, issue, print ------------------------------------------------------------------------

def register_case(c: services.Centre, *, ticket_id: str, kind: str, reference: str, by: str,
                  documents: list | None = None, contact: str | None = None, notes: str | None = None,
                  provider: str | None = None, details: str | None = None, lang: str | None = None) -> dict:
    """Register what the citizen being served submits; durable before it returns.

    The due date comes from the service's SLA (72 h unless configured) over the centre's working
    days; a referral is handed over at once and starts referred. Everything is checked before
    anything is written, so a refused request changes nothing."""
    case_kind = domain.parse_kind(kind)
    errors: dict[str, str] = {}
    checks = [
        ("reference", lambda: normalise_reference(reference)),
        ("contact", lambda: _clean_text(contact, "contact", MAX_CONTACT, multiline=False)),
        ("notes", lambda: _clean_text(notes, "notes", MAX_NOTES, multiline=True)),
        ("details", lambda: _clean_text(details, "details", MAX_DETAILS, multiline=True)),
    ]
    values: dict[str, str] = {}
    for name, check in checks:
        try:
            values[name] = check()
        except ValidationFailed as exc:
            errors.update(exc.fields)
    provider_id = (provider or "").strip()
    if case_kind is Kind.REFERRAL:
        if not provider_id:
            errors["provider"] = "required for a referral"
        else:
            try:
                get_provider(c, provider_id)
            except ValidationFailed as exc:
                errors.update(exc.fields)
    elif provider_id or values.get("details"):
        errors["provider"] = "only a referral names a provider and referral details"
    if lang is not None and lang not in services.LANGS:
        errors["lang"] = "must be one of ar, ckb, en"
    with c.store.lock:
        ticket = c.tickets.get(ticket_id) if isinstance(ticket_id, str) else None
        if ticket is None:
            raise NotFound(f"no ticket {ticket_id!r}", ticket=ticket_id)
        if ticket["state"] not in SERVING_STATES:
            raise InvalidTransition("a request is registered while its ticket is being served",
                                    ticket=ticket["number"], state=ticket["state"])
        service = services.get_service(c, ticket["service"])
        try:
            picked = _documents(service, documents)
        except ValidationFailed as exc:
            errors.update(exc.fields)
        if errors:
            raise ValidationFailed("the request cannot be registered", errors)
        now = c.clock.now()
        now_ms = int(now.timestamp() * 1000)
        case_id, receipt_id = new_ulid(now_ms), new_ulid(now_ms)
        box = vault(c)
        hours = domain.sla_hours(service)
        status = Status.REFERRED if case_kind is Kind.REFERRAL else Status.OPEN
        sealed = {}
        if values["contact"]:
            sealed["contact"] = box.seal(values["contact"], record_id=case_id, name="contact")
        if values["notes"]:
            sealed["notes"] = box.seal(values["notes"], record_id=case_id, name="notes")
        if case_kind is Kind.REFERRAL:
            sealed["referral"] = box.seal({"provider": provider_id, "details": values["details"]},
                                          record_id=case_id, name="referral")
        doc = {
            "id": case_id, "centre": c.config["CENTRE"], "device": c.store.device_id,
            "kind": case_kind.value, "service": service["code"], "ticket": ticket["id"],
            "ticket_number": ticket["number"], "lang": lang or ticket.get("lang") or c.config["DEFAULT_LANGUAGE"],
            "documents": picked, "fee_iqd": int(service.get("fee_iqd") or 0), "sla_hours": hours,
            "created_at": iso(now), "created_day": c.today(now),
            "due_at": iso(domain.due_at(now, hours, services.calendar(c), c.tz)),
            "receipt_id": receipt_id, "citizen_ref": box.citizen_ref(values["reference"], receipt_id).hex(),
            "status": status.value, "status_at": iso(now), "status_by": by,
            "events": [{"status": status.value, "at": iso(now), "by": by}],
            "sealed": sealed, "by": by,
        }
        with c.store.transaction():
            c.store.put(CASES, doc)
            services._audit(c, by, "case_register", case_id,
                            {"kind": case_kind.value, "service": service["code"], "ticket": ticket["number"]})
    log.info("case %s registered (%s, service %s, ticket %s)", case_id, case_kind.value, service["code"],
             ticket["number"])
    return doc


def get_case(c: services.Centre, case_id: str) -> dict:
    """One case, live or of a closed day, or NotFound."""
    doc = c.history.get(CASES, case_id) if isinstance(case_id, str) else None
    if doc is None:
        raise NotFound(f"no case {case_id!r}", case=case_id)
    return doc


def receipt_of(c: services.Centre, doc: dict) -> dict | None:
    """The case's receipt record, or None before one is issued. A live case's receipt is live (day
    close archives a receipt with its closed case or after it), so only an archived case's receipt
    is looked for in the archive."""
    record = c.store.get(RECEIPTS, doc["receipt_id"])
    if record is not None or c.store.get(CASES, doc["id"]) is not None:
        return record
    return c.history.get(RECEIPTS, doc["receipt_id"], days=[doc["created_day"]])


def central_decision(c: services.Centre, case_id: str) -> dict | None:
    """The back office's decision on a case, pulled from central, if there is one."""
    return c.store.get("settings", STATUS_PREFIX + case_id)


def current_status(c: services.Centre, doc: dict) -> domain.CurrentStatus:
    """The status to show for a case: central's decision if any, else the centre's own record."""
    return domain.merge_status(Status(doc["status"]), parse_iso(doc["status_at"]), central_decision(c, doc["id"]))


def _verify_host(c: services.Centre, accepted: trustlist.TrustList | None) -> str:
    """The host receipts name: the trust list's, else central's `settings/receipts` verify_host."""
    if accepted is not None:
        return accepted.verify_host
    host = _receipt_settings(c).get("verify_host")
    try:
        return receipts.normalise_host(host)
    except ValueError:
        raise ReceiptUnavailable("no verification host yet: run the sync so the trust list arrives "
                                 "from central") from None


def issue_receipt(c: services.Centre, case_id: str, *, by: str) -> dict:
    """Sign the case's receipt with the centre key and store it; a case has one receipt, so asking
    again returns the stored one. Returns the receipt document (its `text` is the QR text)."""
    with c.store.lock:
        doc = get_case(c, case_id)
        existing = receipt_of(c, doc)
        if existing is not None:
            return existing
        accepted = current_trust_list(c)
        host = _verify_host(c, accepted)
        try:
            key = keys.load_or_create_centre_key(data_dir(c))
        except (keys.KeyFileError, OSError) as exc:
            log.error("cannot sign receipts: %s", exc)
            raise ReceiptUnavailable("the centre's signing key cannot be used; call the supervisor") from None
        now = c.clock.now()
        status = current_status(c, doc).status
        valid_days = _receipt_settings(c).get("valid_days", DEFAULT_VALID_DAYS)
        if type(valid_days) is not int or not 30 <= valid_days <= 3660:
            valid_days = DEFAULT_VALID_DAYS
        due = parse_iso(doc["due_at"])
        service = REFERRAL_RECEIPT_SERVICE if doc["kind"] == Kind.REFERRAL.value else doc["service"]
        try:
            receipt = receipts.Receipt(
                receipt_id=doc["receipt_id"], centre=doc["centre"], service=service, ticket=doc["ticket_number"],
                issued_at=now, due_at=max(due, now), fee_iqd=doc["fee_iqd"], status=status.receipt_status,
                citizen_ref=bytes.fromhex(doc["citizen_ref"]),
                expires_at=max(now, due) + dt.timedelta(days=valid_days))
        except ValueError as exc:
            log.error("case %s cannot become a receipt: %s", case_id, exc)
            raise ReceiptUnavailable(f"this case cannot be put on a receipt: {exc}") from None
        text = receipts.issue(receipt, key.private_key, host, kid=key.kid)
        verdict = receipts.verify(text, accepted, now) if accepted is not None else None
        record = {"id": receipt.receipt_id, "case": case_id, "text": text, "kid": key.kid.hex(),
                  "issued_at": iso(receipt.issued_at), "status": status.value, "device": c.store.device_id,
                  "verifies": verdict.reason if verdict is not None else "no_trust_list"}
        with c.store.transaction():
            c.store.put(RECEIPTS, record)
            services._audit(c, by, "receipt_issue", case_id, {"receipt": receipt.receipt_id})
    if verdict is None or not verdict.is_valid:
        log.warning("receipt %s does not verify here yet (%s): enrol key %s with central",
                    receipt.receipt_id, record["verifies"], key.kid.hex())
    return record


def change_status(c: services.Centre, case_id: str, status: str, *, by: str, reason: str | None = None,
                  provider: str | None = None, details: str | None = None) -> dict:
    """Complete, reject (with a reason) or refer (to a listed provider) an open case."""
    new = domain.parse_status(status)
    reason_text = _clean_text(reason, "reason", domain.MAX_REASON_CHARS, multiline=True)
    details_text = _clean_text(details, "details", MAX_DETAILS, multiline=True)
    provider_id = (provider or "").strip()
    with c.store.lock:
        doc = get_case(c, case_id)
        current = current_status(c, doc)
        domain.check_transition(current.status, new, reason=reason_text or None, provider=provider_id or None)
        if new is Status.REFERRED:
            get_provider(c, provider_id)
        elif provider_id or details_text:
            raise ValidationFailed("provider only for a referral", {"provider": "only a referral names a provider"})
        now = c.clock.now()
        box = vault(c)
        doc["sealed"] = dict(doc.get("sealed") or {})
        if new is Status.REJECTED:
            doc["sealed"]["reason"] = box.seal(reason_text, record_id=case_id, name="reason")
        if new is Status.REFERRED:
            doc["sealed"]["referral"] = box.seal({"provider": provider_id, "details": details_text},
                                                 record_id=case_id, name="referral")
        doc.update({"status": new.value, "status_at": iso(now), "status_by": by})
        doc["events"] = [*doc["events"], {"status": new.value, "at": iso(now), "by": by}]
        with c.store.transaction():
            c.store.put(CASES, doc)
            services._audit(c, by, "case_status", case_id, {"status": new.value})
    log.info("case %s is now %s", case_id, new.value)
    return doc


def case_secrets(c: services.Centre, doc: dict) -> dict:
    """The sealed fields of a case, opened for the staff screen (never for a display or a log)."""
    box = vault(c)
    out: dict = {"contact": "", "notes": "", "reason": "", "provider": None, "details": "", "unreadable": []}
    for name, token in (doc.get("sealed") or {}).items():
        try:
            value = box.open(token, record_id=doc["id"], name=name)
        except VaultError as exc:
            log.error("case %s: sealed field %s does not open (%s)", doc["id"], name, exc)
            out["unreadable"].append(name)
            continue
        if name == "referral" and isinstance(value, dict):
            out["details"] = str(value.get("details") or "")
            pid = value.get("provider")
            out["provider"] = next((p for p in providers(c) if p["id"] == pid), {"id": pid, "names": {}, "sector": "other",
                                                                                 "contact": ""})
        elif name in ("contact", "notes", "reason"):
            out[name] = str(value)
    return out


def matches_reference(c: services.Centre, doc: dict, reference: str) -> bool:
    """True when `reference` is the citizen reference the case was registered with (collection check)."""
    try:
        ref = normalise_reference(reference)
    except ValidationFailed:
        return False
    return vault(c).citizen_ref(ref, doc["receipt_id"]).hex() == doc["citizen_ref"]


# -- read models ------------------------------------------------------------------------------------

def case_view(c: services.Centre, doc: dict, now: dt.datetime | None = None) -> dict:
    """What a staff screen shows of a case (no sealed field)."""
    now = now or c.clock.now()
    current = current_status(c, doc)
    due = parse_iso(doc["due_at"])
    return {"id": doc["id"], "kind": doc["kind"], "service": doc["service"], "ticket_number": doc["ticket_number"],
            "created_at": doc["created_at"], "due_at": doc["due_at"], "status": current.status.value,
            "status_at": iso(current.at) if current.at else None, "source": current.source,
            "overdue": domain.is_overdue(current.status, due, now), "receipt_id": doc["receipt_id"],
            "has_receipt": receipt_of(c, doc) is not None, "documents": doc.get("documents", []),
            "fee_iqd": doc.get("fee_iqd", 0), "lang": doc.get("lang"), "events": doc.get("events", []),
            "central_reason": current.reason if current.source == "central" else None}


def list_cases(c: services.Centre, *, include_closed: bool = False, now: dt.datetime | None = None) -> list[dict]:
    """Cases by due date, soonest (or most overdue) first; open ones only unless `include_closed`,
    which adds the closed cases of days not yet closed (older ones are in the monthly report and
    open by their id)."""
    now = now or c.clock.now()
    views = [case_view(c, doc, now) for doc in c.store.all(CASES)]
    if not include_closed:
        views = [v for v in views if v["status"] == Status.OPEN.value]
    return sorted(views, key=lambda v: (v["status"] != Status.OPEN.value, v["due_at"], v["id"]))


def cases_at_counter(c: services.Centre, counter: str) -> list[dict]:
    """Tickets being served at a counter, each with the cases already registered for it."""
    out = []
    for ticket in c.tickets.at_counter(counter):
        registered = [d for d in c.store.find(CASES, lambda d, t=ticket["id"]: d.get("ticket") == t)]
        out.append({"ticket": ticket, "cases": [case_view(c, d) for d in registered]})
    return out


def report(c: services.Centre, month: str, now: dt.datetime | None = None) -> domain.Report:
    """The centre's monthly report (statuses as they are now, central's decisions included), from
    the cases registered that month, whether their days are closed or not."""
    now = now or c.clock.now()
    facts = []
    days = [day.isoformat() for day in domain.month_days(month)]
    for doc in c.history.records(CASES, days):
        try:
            facts.append(domain.facts_of(doc, central_decision(c, doc["id"])))
        except ValueError as exc:
            log.error("case %s left out of the report: %s", doc.get("id"), exc)
    return domain.monthly_report(facts, month, now)


REPORT_COLUMNS = ("received", "completed", "completed_pct", "rejected", "rejected_pct", "referred",
                  "referred_pct", "open", "overdue", "overdue_pct")


def report_csv(result: domain.Report, *, scope: str = "") -> str:
    """The report as CSV: one row for the total, then one per centre, service and kind."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["month", "scope", "group", "key", *REPORT_COLUMNS])
    rows = [("total", "all", result.total)]
    rows += [("centre", key, figures) for key, figures in result.by_centre.items()]
    rows += [("service", key, figures) for key, figures in result.by_service.items()]
    rows += [("kind", key, figures) for key, figures in result.by_kind.items()]
    for group, key, figures in rows:
        row = figures.as_row()
        writer.writerow([result.month, scope, group, _csv_safe(key), *(row[name] for name in REPORT_COLUMNS)])
    return out.getvalue()


def _csv_safe(value: str) -> str:
    """A cell a spreadsheet will not run as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


# -- verification at the kiosk ----------------------------------------------------------------------

def verify_scanned(c: services.Centre, text: object) -> dict:
    """Verify a scanned or pasted receipt code offline and add the case's current status when the
    case is one of this centre's. `outcome` is valid / invalid / expired / revoked, or cannot_verify
    (no trust list) or layout (the scanner typed Arabic letters: its keyboard layout is wrong)."""
    code = text.strip() if isinstance(text, str) else ""
    if not code:
        raise ValidationFailed("no code", {"code": "scan or paste a receipt code"})
    if len(code) > receipts.MAX_QR_TEXT_LENGTH * 2:
        raise ValidationFailed("code too long", {"code": "this is not a receipt code"})
    if _ARABIC_SCRIPT.search(code):
        # a keyboard-wedge scanner types through the active layout: on Arabic, Latin becomes Arabic
        return {"outcome": "layout", "reason": "layout", "verdict": None, "case": None, "trust_list": None}
    accepted = current_trust_list(c)
    if accepted is None:
        return {"outcome": "cannot_verify", "reason": "no_trust_list", "verdict": None, "case": None,
                "trust_list": None}
    verdict = receipts.verify(code, accepted, c.clock.now())
    found = None
    if verdict.receipt is not None and verdict.receipt.centre == c.config["CENTRE"]:
        issued_day = verdict.receipt.issued_at.astimezone(c.tz).date().isoformat()
        record = c.history.get(RECEIPTS, verdict.receipt.receipt_id, days=[issued_day])
        doc = c.history.get(CASES, record["case"], days=[issued_day]) if record else None
        if doc is not None:
            found = case_view(c, doc)
    return {"outcome": verdict.outcome.value, "reason": verdict.reason, "verdict": verdict.to_json(),
            "case": found, "trust_list": accepted.sequence}


# -- the receipt on paper ------------------------------------------------------------------------

def receipt_check(c: services.Centre, record: dict) -> str:
    """Whether a stored receipt verifies here now: "ok", or the reason it does not (e.g. its key is
    not enrolled yet: "unknown_key"; no trust list yet: "no_trust_list")."""
    accepted = current_trust_list(c)
    if accepted is None:
        return "no_trust_list"
    return receipts.verify(record["text"], accepted, c.clock.now()).reason


def receipt_host(record: dict) -> str:
    """The verification host a stored receipt's QR names."""
    return record["text"].split("/R#", 1)[0].removeprefix("HTTPS://")


def receipt_slip(c: services.Centre, doc: dict, record: dict, lang: str | None = None):
    """The receipt's summary in the citizen's language (needs the app context for translations)."""
    from hardware.receipt import ReceiptSlip
    from kiosk.i18n.locales import LOCALES, digits, format_date, format_datetime, format_number, isolate

    lang = lang if lang in services.LANGS else doc.get("lang") or "ar"
    service = c.store.get("services", doc["service"]) or {"names": {}}
    locale = LOCALES[lang]

    with force_locale(locale):
        if doc["kind"] == Kind.REFERRAL.value:
            service_text = str(KIND_TEXTS["referral"])  # never the provider or its sector
        else:
            service_text = (service.get("names") or {}).get(lang) or doc["service"]
        fee = int(doc.get("fee_iqd") or 0)
        fee_text = (gettext("This service is free. Pay nobody.") if fee == 0 else
                    gettext("Official fee: %(fee)s IQD. Pay only at the cashier.", fee=format_number(fee, lang)))
        status = STATUS_TEXTS[record.get("status", "open")]
        host = receipt_host(record).lower()
        facts = (
            (gettext("Kind"), str(KIND_TEXTS[doc["kind"]])),
            (gettext("Registered"), format_datetime(parse_iso(record["issued_at"]), lang, c.tz)),
            (gettext("Answer due by"), format_date(parse_iso(doc["due_at"]), lang, c.tz)),
            (gettext("Status"), str(status)),
        )
        return ReceiptSlip(
            lang=lang, centre=c.config["CENTRE_NAMES"].get(lang) or c.config["CENTRE"],
            title=gettext("Receipt for your request"), service=service_text, ticket=doc["ticket_number"],
            receipt_id=doc["receipt_id"], facts=tuple((label, digits(value, lang)) for label, value in facts),
            fee_text=digits(fee_text, lang), qr=record["text"],
            documents_title=gettext("Documents received") if doc.get("documents") else "",
            documents=tuple((d.get(lang) or d.get("en") or "") for d in doc.get("documents", [])),
            warning=(gettext("DEMO RECEIPT: for trying the system only, not valid for a real request.")
                     if keys.is_demo_host(receipt_host(record)) else
                     gettext("Do not pay anyone more than the official fee. Keep this receipt.")),
            # the address is an isolate: inside a right-to-left sentence it keeps its place and order
            footer=gettext("Check this receipt at any centre kiosk or at %(site)s", site=isolate(f"https://{host}/R")))


def print_receipt(c: services.Centre, case_id: str, *, lang: str | None = None) -> str | None:
    """Queue the case's receipt on the centre's printer; the job id, or None when printing is off
    or the printer refused the job (logged; the receipt stays stored and shown on screen)."""
    from hardware.receipt import receipt_document

    doc = get_case(c, case_id)
    record = receipt_of(c, doc)
    if record is None:
        raise NotFound("this case has no receipt yet", case=case_id)
    if c.printer is None:
        return None
    try:
        return c.printer.print_document(receipt_document(receipt_slip(c, doc, record, lang)))
    except Exception:
        log.exception("could not queue receipt %s for printing", doc["receipt_id"])
        return None
