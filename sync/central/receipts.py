"""Receipts at central: the public `/R` page that verifies a receipt in the citizen's browser and
then asks for its live status, the published trust list, and the operators' pages: back-office
status changes, overdue requests per centre and the national and per-centre monthly report.

Data: kiosks push their `requests` and `receipts` documents like every other table (sync_records).
A back-office decision is central's own document, `settings/case_status:<case id>` in the centre's
configuration feed, so kiosks pull it and nobody else ever writes it. The signed trust list is
`settings/trust_list` in every centre's feed; `flask --app sync.central trust-publish` writes it.

The /R page holds no secret: the receipt travels in the URL fragment (never sent to a server), the
browser verifies it with WebCrypto, and only the whole signed text is posted for the live status,
never a bare receipt id (ids are guessable, signed texts are not). The answer adds the centre's and
the service's names in the page's language; without it the page shows the codes the QR holds.

Every page is in the reader's language (sync/central/i18n.py) and names centres and services
(sync/central/names.py).
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
from pathlib import Path

from flask import (Blueprint, Flask, Response, abort, current_app, jsonify, render_template, request,
                   send_file, url_for)
from flask_babel import gettext, lazy_gettext
from sqlalchemy import Connection, select

from kiosk.domain import cases as domain
from kiosk.domain import receipts, trustlist
from kiosk.domain.cases import Status
from kiosk.domain.errors import KioskError
from kiosk.i18n.locales import isolate
from sync.central import feed, i18n, names, views
from sync.central.errors import CentralError
from sync.central.models import Centre, ConfigChange, ConfigDoc, Record

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
VERIFIER_JS = ROOT / "kiosk" / "static" / "js" / "receipt-verify.js"
STATUS_PREFIX = "case_status:"
TRUST_LIST_SETTING = "trust_list"
PROVIDERS_SETTING = "providers"
CASES = "requests"
RECEIPTS = "receipts"
MAX_STATUS_BODY = 4096
# A referral's receipt names no service (kiosk.cases.REFERRAL_RECEIPT_SERVICE): which help a person
# sought is confidential, so central names none either.
REFERRAL_SERVICE = "GEN"
PAGE_CSP = ("default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; "
            "font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# What the decision form says about each refusal, in the operator's language.
DECISION_TEXTS = {
    "case": lazy_gettext("This centre has no record of this request."),
    "status": lazy_gettext("Choose completed, rejected or referred."),
    "reason": lazy_gettext("A rejection needs a reason (at most 500 characters)."),
    "provider": lazy_gettext("A referral needs a provider from the directory; other requests name none."),
    "closed": lazy_gettext("This request is already closed; its status cannot change."),
}

public = Blueprint("receipts_public", __name__)
ops = Blueprint("receipts_ops", __name__, url_prefix="/receipts")
# Deny by default: every operator page sits behind the same login as central's other pages.
ops.before_request(views._require_operator)


def _central():
    """The app's Central (engine, clock)."""
    return current_app.extensions["central"]


def receipts_dir(app: Flask | None = None) -> Path:
    """Where central keeps the root key, its public half, the draft and the published trust list."""
    app = app or current_app
    configured = app.config.get("CENTRAL_RECEIPTS_DIR") or os.environ.get("CENTRAL_RECEIPTS_DIR")
    return Path(configured) if configured else Path(app.instance_path) / "receipts"


# -- what central knows ------------------------------------------------------------------------

def published_trust_list(conn: Connection) -> tuple[int, bytes] | None:
    """(sequence, signed bytes) of the newest trust list in any centre's feed, or None."""
    best = None
    for doc in conn.execute(select(ConfigDoc.doc).where(ConfigDoc.tbl == "settings",
                                                        ConfigDoc.key == TRUST_LIST_SETTING,
                                                        ConfigDoc.deleted.is_(False))).scalars():
        if isinstance(doc, dict) and isinstance(doc.get("sequence"), int):
            if best is None or doc["sequence"] > best[0]:
                best = (doc["sequence"], doc.get("signed_base64", ""))
    if best is None:
        return None
    return best[0], base64.b64decode(best[1])


def root_public_keys(app: Flask | None = None) -> list:
    """The root public key(s) trust lists are checked against (receipts/root-public.pem)."""
    from kiosk import keys
    path = receipts_dir(app) / "root-public.pem"
    try:
        return keys.load_public_keys_pem(path.read_bytes())
    except FileNotFoundError:
        return []


def open_published(conn: Connection) -> trustlist.TrustList | None:
    """The published trust list, checked under the root key like a kiosk checks it."""
    found = published_trust_list(conn)
    roots = root_public_keys()
    if found is None or not roots:
        return None
    try:
        return trustlist.open_trust_list(found[1], roots)
    except trustlist.TrustListError as exc:
        log.error("the published trust list %d does not open under the root key: %s", found[0], exc.reason)
        return None


def decisions(conn: Connection, centre: str | None = None) -> dict[tuple[str, str], dict]:
    """Back-office decisions by (centre, case id), read from the feed's history: a decision stays
    known at central even if a configuration load later removed its document from the feed."""
    query = (select(ConfigChange.centre, ConfigChange.key, ConfigChange.doc)
             .where(ConfigChange.tbl == "settings", ConfigChange.op == "put",
                    ConfigChange.key.like(STATUS_PREFIX + "%"))
             .order_by(ConfigChange.seq))
    if centre is not None:
        query = query.where(ConfigChange.centre == centre)
    return {(row.centre, row.key[len(STATUS_PREFIX):]): row.doc for row in conn.execute(query)}


def decision(conn: Connection, centre: str, case_id: str) -> dict | None:
    """The latest back-office decision on one case (one indexed lookup, for the status endpoint)."""
    return conn.execute(select(ConfigChange.doc)
                        .where(ConfigChange.centre == centre, ConfigChange.tbl == "settings",
                               ConfigChange.key == STATUS_PREFIX + case_id, ConfigChange.op == "put")
                        .order_by(ConfigChange.seq.desc()).limit(1)).scalar()


def case_docs(conn: Connection, centre: str | None = None) -> list[tuple[str, dict]]:
    """Every case pushed by the kiosks, as (centre, document)."""
    query = select(Record.centre, Record.doc).where(Record.tbl == CASES, Record.deleted.is_(False))
    if centre is not None:
        query = query.where(Record.centre == centre)
    return [(row.centre, row.doc) for row in conn.execute(query) if isinstance(row.doc, dict)]


def _parse(value: object) -> dt.datetime | None:
    """An ISO time with a zone as aware UTC, None if absent or unreadable."""
    try:
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    return moment.astimezone(dt.timezone.utc) if moment.tzinfo else None


def case_view(centre: str, doc: dict, decision: dict | None, now: dt.datetime) -> dict:
    """A case as central's pages and the status endpoint show it (no sealed field, no reference)."""
    try:
        kiosk_status = Status(doc.get("status"))
    except ValueError:
        kiosk_status = Status.OPEN
    current = domain.merge_status(kiosk_status, _parse(doc.get("status_at")), decision)
    due = _parse(doc.get("due_at"))
    return {"centre": centre, "id": doc.get("id"), "kind": doc.get("kind"), "service": doc.get("service"),
            "ticket_number": doc.get("ticket_number"), "created_at": doc.get("created_at"),
            "due_at": doc.get("due_at"), "status": current.status.value,
            "status_at": receipts.iso(current.at) if current.at else None, "source": current.source,
            "reason": current.reason, "provider": current.provider,
            "overdue": bool(due and domain.is_overdue(current.status, due, now)),
            "late_days": max(0, (now - due).days) if due else 0}


def find_case(conn: Connection, centre: str, case_id: str) -> dict | None:
    """A pushed case of a centre, or None."""
    row = conn.execute(select(Record.doc).where(Record.centre == centre, Record.tbl == CASES,
                                                Record.key == case_id, Record.deleted.is_(False))).scalar()
    return row if isinstance(row, dict) else None


def providers(conn: Connection, centre: str) -> list[dict]:
    """The provider directory configured for a centre (settings/providers)."""
    doc = conn.execute(select(ConfigDoc.doc).where(ConfigDoc.centre == centre, ConfigDoc.tbl == "settings",
                                                   ConfigDoc.key == PROVIDERS_SETTING,
                                                   ConfigDoc.deleted.is_(False))).scalar() or {}
    entries = doc.get("providers") if isinstance(doc, dict) else None
    return [p for p in entries or [] if isinstance(p, dict) and receipts.is_code(p.get("id"))]


class Refused(CentralError):
    """A decision central will not record; `what` names the problem (a key of DECISION_TEXTS)."""

    def __init__(self, message: str, what: str):
        """The English message (command line, logs) and what it is about."""
        super().__init__(message)
        self.what = what


def decide(conn: Connection, centre: str, case_id: str, status: str, *, by: str, now: dt.datetime,
           reason: str | None = None, provider: str | None = None) -> dict:
    """Record a back office's decision on a case (completed, rejected with a reason, referred to a
    listed provider) in the centre's feed, so the kiosk pulls it. Refused when it cannot be."""
    doc = find_case(conn, centre, case_id) if isinstance(case_id, str) else None
    if doc is None:
        raise Refused(f"centre {centre} has sent no case {case_id!r}", "case")
    reason = (reason or "").strip()
    provider = (provider or "").strip()
    try:
        new = domain.parse_status(status)
        current = case_view(centre, doc, decision(conn, centre, case_id), now)
        domain.check_transition(Status(current["status"]), new, reason=reason or None, provider=provider or None)
    except KioskError as exc:
        fields = getattr(exc, "fields", None) or {}
        what = next(iter(fields), "closed")
        raise Refused(exc.message + (": " + "; ".join(f"{k} {v}" for k, v in fields.items()) if fields else ""),
                      what if what in DECISION_TEXTS else "status") from None
    if new is Status.REFERRED and provider not in {p["id"] for p in providers(conn, centre)}:
        raise Refused(f"provider {provider!r} is not in centre {centre}'s provider directory", "provider")
    if new is not Status.REFERRED and provider:
        raise Refused("only a referral names a provider", "provider")
    made = {"id": STATUS_PREFIX + case_id, "case": case_id, "status": new.value,
            "changed_at": receipts.iso(now), "by": by}
    if reason:
        made["reason"] = reason
    if provider:
        made["provider"] = provider
    feed.lock_feed(conn)
    feed._record(conn, centre, "settings", made["id"], "put", made, now)
    log.info("case %s of centre %s set to %s by %s", case_id, centre, new.value, by)
    return made


def overdue_by_centre(conn: Connection, now: dt.datetime) -> dict[str, list[dict]]:
    """Open cases past their due date, per centre, most overdue first."""
    known = decisions(conn)
    out: dict[str, list[dict]] = {}
    for centre, doc in case_docs(conn):
        view = case_view(centre, doc, known.get((centre, doc.get("id"))), now)
        if view["overdue"]:
            out.setdefault(centre, []).append(view)
    return {centre: sorted(items, key=lambda v: v["due_at"] or "") for centre, items in sorted(out.items())}


def national_report(conn: Connection, month: str, now: dt.datetime, centre: str | None = None) -> domain.Report:
    """The month's figures for one centre or all of them (statuses as they are now)."""
    known = decisions(conn, centre)
    facts = []
    for code, doc in case_docs(conn, centre):
        try:
            facts.append(domain.facts_of({**doc, "centre": code}, known.get((code, doc.get("id")))))
        except ValueError as exc:
            log.error("case %s of centre %s left out of the report: %s", doc.get("id"), code, exc)
    return domain.monthly_report(facts, month, now)


# -- public: the /R page and its endpoints ---------------------------------------------------------

def _page(template: str, status: int = 200, **context) -> Response:
    """A citizen-facing page in the reader's language, under a CSP that allows only our own script."""
    body = render_template(template, **context)
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


REASON_KEYS = ("ok", "malformed", "wrong_host", "unsupported_alg", "unknown_key", "bad_signature", "bad_payload",
               "key_not_valid", "centre_mismatch", "key_revoked", "receipt_revoked", "receipt_expired")


@public.get("/R")
@public.get("/r")
def verify_page():
    """The page a receipt's QR opens: the script reads the fragment and verifies it in the browser."""
    return _page("central/receipts/verify.html", reasons=REASON_KEYS,
                 statuses=("open", "completed", "rejected", "referred"), dates=i18n.date_script_facts(i18n.current_lang()))


@public.get("/R/receipt-verify.js")
def verifier_script():
    """The same browser verifier the kiosks and the test vectors use (one file, no copy)."""
    response = send_file(VERIFIER_JS, mimetype="text/javascript", max_age=300)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# The page's icon: a tick in a seal, so phones show something recognisable in their tabs.
ICON_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><circle cx="16" cy="16" r="15" '
            'fill="#0b3d91"/><path d="M9 16.5l4.5 4.5L23 11" fill="none" stroke="#fff" stroke-width="3.5" '
            'stroke-linecap="round" stroke-linejoin="round"/></svg>')


@public.get("/R/icon.svg")
def icon():
    """The /R page's icon."""
    response = Response(ICON_SVG, mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@public.get("/R/trust-list")
def trust_list_json():
    """The published signed trust list and the root key(s) to check it with (JWK)."""
    with _central().engine.connect() as conn:
        found = published_trust_list(conn)
    roots = root_public_keys()
    if found is None or not roots:
        return jsonify({"error": {"code": "not_published", "message": "no trust list has been published yet"}}), 503
    response = jsonify({"sequence": found[0], "signed_base64": base64.b64encode(found[1]).decode("ascii"),
                        "root_keys": [trustlist.public_jwk(key) for key in roots]})
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@public.get("/.well-known/receipt-keys")
def trust_list_cbor():
    """The published trust list as signed bytes, for any third-party verifier."""
    with _central().engine.connect() as conn:
        found = published_trust_list(conn)
    if found is None:
        return jsonify({"error": {"code": "not_published", "message": "no trust list has been published yet"}}), 503
    response = Response(found[1], mimetype="application/cbor")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def receipt_names(conn: Connection, receipt: receipts.Receipt, lang: str) -> dict:
    """The centre's and the service's names in `lang` for a verified receipt (None for what central
    cannot name; never a name for a referral's service)."""
    directory = names.directory(conn, receipt.centre)
    service = None if receipt.service == REFERRAL_SERVICE else directory.service(receipt.service, receipt.centre, lang)
    return {"centre": directory.centre(receipt.centre, lang), "service": service}


def _status_error(status: int, code: str, message: str):
    """The JSON error shape of the status endpoint."""
    return jsonify({"error": {"code": code, "message": message}}), status


@public.post("/R/status")
def live_status():
    """Verify a posted receipt text server-side and answer its live status (no personal data)."""
    if request.content_length is not None and request.content_length > MAX_STATUS_BODY:
        return _status_error(413, "payload_too_large", f"at most {MAX_STATUS_BODY} bytes")
    raw = request.get_data(cache=False)
    if len(raw) > MAX_STATUS_BODY:
        return _status_error(413, "payload_too_large", f"at most {MAX_STATUS_BODY} bytes")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        # RecursionError: 4 KB of "[[[[..." is enough to exhaust the parser's stack
        return _status_error(400, "bad_request", "the body must be JSON")
    if (not isinstance(body, dict) or "qr_text" not in body or not set(body) <= {"qr_text", "lang"}
            or not isinstance(body["qr_text"], str) or body.get("lang", "ar") not in i18n.LANGS):
        return _status_error(422, "validation_failed", 'send {"qr_text": "HTTPS://.../R#...", "lang": "ar|ckb|en"}')
    central = _central()
    now = central.clock.now()
    with central.engine.connect() as conn:
        accepted = open_published(conn)
        if accepted is None:
            return _status_error(503, "not_published", "no trust list has been published yet")
        verdict = receipts.verify(body["qr_text"].strip(), accepted, now)
        answer = {"outcome": verdict.outcome.value, "reason": verdict.reason, "status": None, "names": None}
        if verdict.receipt is not None and verdict.reason not in ("key_not_valid", "centre_mismatch"):
            centre = verdict.receipt.centre
            answer["names"] = receipt_names(conn, verdict.receipt, body.get("lang") or i18n.current_lang())
            record = conn.execute(select(Record.doc).where(Record.centre == centre, Record.tbl == RECEIPTS,
                                                           Record.key == verdict.receipt.receipt_id,
                                                           Record.deleted.is_(False))).scalar()
            doc = find_case(conn, centre, record.get("case")) if isinstance(record, dict) else None
            if doc is not None:
                view = case_view(centre, doc, decision(conn, centre, str(doc.get("id"))), now)
                answer["status"] = {"status": view["status"], "overdue": view["overdue"], "due_at": view["due_at"],
                                    "changed_at": view["status_at"] if view["status"] != "open" else None}
    return jsonify(answer)


# -- operators: back office, overdue, reports ------------------------------------------------------

# the operators' form protection is shared with central's other pages
_operator = views.operator
_csrf_token = views.form_token
_check_form = views.check_form


@ops.after_request
def _no_store(response: Response) -> Response:
    """Operator pages show case details: never cached."""
    response.headers["Cache-Control"] = "no-store"
    return response


@ops.get("/overdue")
def overdue():
    """Open requests past their due date, per centre."""
    central = _central()
    now = central.clock.now()
    with central.engine.connect() as conn:
        by_centre = overdue_by_centre(conn, now)
        directory = names.directory(conn)
    return render_template("central/receipts/overdue.html", by_centre=by_centre, names=directory, now=now)


@ops.route("/cases/<centre>/<case_id>", methods=["GET", "POST"])
def case(centre: str, case_id: str):
    """One case and the back office's decision form."""
    central = _central()
    now = central.clock.now()
    error = None
    status = 200
    if request.method == "POST":
        _check_form()
        try:
            with central.engine.begin() as conn:
                decide(conn, centre, case_id, request.form.get("status", ""), by=_operator(), now=now,
                       reason=request.form.get("reason"), provider=request.form.get("provider"))
        except Refused as exc:
            error, status = DECISION_TEXTS[exc.what], 422
        else:
            return Response(status=303, headers={"Location": url_for("receipts_ops.case", centre=centre,
                                                                     case_id=case_id, saved=1)})
    with central.engine.connect() as conn:
        doc = find_case(conn, centre, case_id)
        if doc is None:
            abort(404)
        view = case_view(centre, doc, decision(conn, centre, case_id), now)
        listed = providers(conn, centre)
        directory = names.directory(conn, centre)
    provider_names = {p["id"]: i18n.pick(p.get("names")) for p in listed}
    return render_template("central/receipts/case.html", case=view, providers=listed, error=error,
                           provider_names=provider_names, names=directory,
                           saved=bool(request.args.get("saved")), csrf_token=_csrf_token()), status


def _report_args() -> tuple[str, str | None]:
    """(month, centre or None) from the query; 400 with a message when malformed."""
    month = request.args.get("month") or _central().clock.now().astimezone(i18n.TIMEZONE).strftime("%Y-%m")
    try:
        domain.parse_month(month)
    except KioskError:
        abort(400, description=i18n.digits(gettext("Choose a month like 2026-11.")))
    centre = request.args.get("centre") or None
    if centre is not None:
        with _central().engine.connect() as conn:
            if conn.execute(select(Centre.code).where(Centre.code == centre)).first() is None:
                abort(404, description=gettext("There is no centre %(centre)s.", centre=isolate(centre)))
    return month, centre


def report_groups(result: domain.Report, directory: names.Directory, centre: str | None) -> list[dict]:
    """The report's groups (by centre, service, kind) with each key's label in the page's language:
    `labels` for tables (name and code), `rows` for charts (name only)."""
    groups = []
    for title, group, name_of in (
            (gettext("By centre"), result.by_centre, directory.centre),
            (gettext("By service"), result.by_service, lambda key: directory.service(key, centre)),
            (gettext("By kind"), result.by_kind, lambda key: str(i18n.KIND_TEXTS.get(key, key)))):
        if not group:
            continue
        plain = {key: name_of(key) or key for key in group}
        labels = {key: (plain[key] if group is result.by_kind else i18n.named(name_of(key), key)) for key in group}
        groups.append({"title": title, "group": group, "labels": labels,
                       "rows": [(plain[key], figures.as_row()) for key, figures in group.items()]})
    return groups


@ops.get("/report")
def report():
    """The national (or one centre's) monthly report with SVG charts."""
    month, centre = _report_args()
    central = _central()
    with central.engine.connect() as conn:
        result = national_report(conn, month, central.clock.now(), centre)
        centres = [c.code for c in conn.execute(select(Centre.code).order_by(Centre.code))]
        directory = names.directory(conn, centre)
    series = [(key, i18n.STATUS_TEXTS[key]) for key in ("completed", "rejected", "referred", "open")]
    return render_template("central/receipts/report.html", result=result, month=month, centre=centre,
                           centres=centres, series=series, groups=report_groups(result, directory, centre),
                           names=directory, days=sorted(result.per_day.items()))


@ops.get("/report.csv")
def report_csv():
    """The same figures as CSV."""
    from kiosk.cases import report_csv as to_csv
    month, centre = _report_args()
    central = _central()
    with central.engine.connect() as conn:
        result = national_report(conn, month, central.clock.now(), centre)
    response = Response("\ufeff" + to_csv(result, scope=centre or "national"), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="requests-{centre or "national"}-{month}.csv"'
    return response


def register(app: Flask) -> None:
    """Install the receipt pages and the trust-list and case-status commands on central."""
    from sync.central import receipts_cli
    app.register_blueprint(public)
    app.register_blueprint(ops)
    receipts_cli.register(app)
