"""Receipts: sign and verify per receipt against bare `cryptography` ECDSA on the same bytes, the
QR version and printed width of the real payload at level M, and render + encode of a full printed
receipt (built by the kiosk's own use cases) against a queue ticket in the same run.

    .venv/bin/python bench/bench_receipts.py [--rounds 3000] [--prints 30]
"""
from __future__ import annotations

import argparse
import datetime as dt
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cbor2  # noqa: E402
import qrcode  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

from kiosk.domain import receipts, trustlist  # noqa: E402

UTC = dt.timezone.utc
DOTS_PER_MM = 8  # 203 dpi thermal head
PAPER_DOTS = {"80 mm (576 dots)": 576, "80 mm Epson TM-T88 (512 dots)": 512, "58 mm (384 dots)": 384}
ISSUED_AT = dt.datetime(2026, 11, 22, 9, 15, tzinfo=UTC)
MODES = {1: "numeric", 2: "alphanumeric", 4: "byte"}


def sample(centre="NIN-MSL-03", service="PS-BIRTH", ticket="B-042", ref_len=8, fee=25000) -> receipts.Receipt:
    """A realistic receipt (or, with longer fields, the largest the schema allows)."""
    rid = "01KAR7X3M9Q4ZP2B6V8N5C1DHW"
    return receipts.Receipt(rid, centre, service, ticket, ISSUED_AT, ISSUED_AT + dt.timedelta(hours=72), fee,
                            receipts.ReceiptStatus.OPEN, b"\xa5" * ref_len, ISSUED_AT + dt.timedelta(days=365))


def median_us(func, rounds: int) -> float:
    """Median wall time of one call, in microseconds."""
    for _ in range(min(200, rounds)):
        func()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        func()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1000


def qr_facts(text: str) -> dict:
    """Version, modules and segment modes of `text` at level M with a 4-module quiet zone."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    code.add_data(text)
    code.make(fit=True)
    modules = 17 + 4 * code.version + 2 * 4
    return {"version": code.version, "modules": modules,
            "segments": "+".join(MODES[chunk.mode] for chunk in code.data_list)}


def real_receipts(data_dir: Path) -> dict:
    """Receipt slips in each language made the way the kiosk makes them: a demo centre coded like a
    real one, a ticket served at a counter, a request registered with two documents and a fee, the
    receipt signed by the centre key; plus the ticket slip of the same ticket for comparison."""
    from kiosk import cases, create_app, services
    from kiosk.clock import FrozenClock
    from kiosk.slips import ticket_slip

    clock = FrozenClock("2026-11-22T07:15:00Z")
    app = create_app({"DATA_DIR": str(data_dir), "SECRET_KEY": "bench", "PRINTER_URL": "off",
                      "CENTRE": "NIN-MSL-03"}, clock=clock)
    state = app.extensions["kiosk"]
    centre = state.centre
    with app.app_context():
        services.load_demo_data(centre)
        centre.store.put("services", {**services.get_service(centre, "B"), "fee_iqd": 25000})
        centre.store.put("settings", {"id": "receipts", "verify_host": "v.example.gov.iq"})
        ticket = services.issue_ticket(centre, service="B", lang="ckb")
        services.set_counter_status(centre, "1", "open", by="demo")
        services.call_ticket(centre, ticket["id"], counter="1", by="demo")
        doc = cases.register_case(centre, ticket_id=ticket["id"], kind="request", reference="199012345678",
                                  documents=["0", "1"], by="demo")
        record = cases.issue_receipt(centre, doc["id"], by="demo")
        service = services.get_service(centre, "B")
        view = services.get_ticket(centre, ticket["id"])
        slips = {lang: (cases.receipt_slip(centre, doc, record, lang),
                        ticket_slip(view, service, centre_names=app.config["CENTRE_NAMES"], tz=centre.tz, lang=lang))
                 for lang in ("ar", "ckb", "en")}
    state.close()
    return {"slips": slips, "text": record["text"]}


def bench_printed(prints: int) -> None:
    """Render + encode of a full receipt against the ticket of the same visit, and the printed QR."""
    from hardware import encode, get_profile, render, ticket_document
    from hardware.receipt import receipt_document
    from hardware.rendering import QrSegment

    logging.disable(logging.WARNING)  # the throw-away centre's first-run key messages
    try:
        with tempfile.TemporaryDirectory() as tmp:
            made = real_receipts(Path(tmp))
    finally:
        logging.disable(logging.NOTSET)
    print(f"\nPrinted receipt: render + encode (TM-T20II, 576 dots, native QR), median of {prints}")
    print(f"  {'language':9} {'receipt ms':>10} {'ticket ms':>10} {'x ticket':>9} {'receipt KB':>10} {'image':>9}")
    profile = get_profile("TM-T20II")
    for lang, (receipt_slip, ticket) in made["slips"].items():
        receipt_doc, ticket_doc = receipt_document(receipt_slip), ticket_document(ticket)
        # the ticket is the baseline: same visit, same language, same printer, measured in turn
        receipt_ms = statistics.median(timed_ms(lambda: encode(render(receipt_doc, profile.width), profile), prints))
        ticket_ms = statistics.median(timed_ms(lambda: encode(render(ticket_doc, profile.width), profile), prints))
        rendered = render(receipt_doc, profile.width)
        size = len(encode(rendered, profile)) / 1000
        print(f"  {lang:9} {receipt_ms:10.1f} {ticket_ms:10.1f} {receipt_ms / ticket_ms:9.2f} {size:10.1f} "
              f"{rendered.width}x{rendered.height:<5}")
    text = made["text"]
    facts = qr_facts(text)
    print(f"\n  real payload from the use cases: {len(text)} characters, version {facts['version']} at level M "
          f"({facts['segments']})")
    for profile_name in ("TM-T20II", "TM-T88V", "POS-5890"):
        profile = get_profile(profile_name)
        receipt_slip = made["slips"]["ckb"][0]
        rendered = render(receipt_document(receipt_slip), profile.width)
        qr = next(s for s in rendered.segments if isinstance(s, QrSegment))
        dots = (qr.modules + 8) * qr.module_dots
        print(f"  {profile_name} ({profile.width} dots): {qr.modules} modules at {qr.module_dots} dots per module, "
              f"{dots} dots = {dots / DOTS_PER_MM:.1f} mm wide with the quiet zone")


def timed_ms(func, rounds: int) -> list[float]:
    """Milliseconds per call, after one warm-up."""
    func()
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        func()
        out.append((time.perf_counter() - start) * 1000)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the measurements and print a table with ratios to the baseline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3000)
    parser.add_argument("--prints", type=int, default=30)
    args = parser.parse_args(argv)

    key = ec.generate_private_key(ec.SECP256R1())
    kid = receipts.key_id(key.public_key())
    host = "V.EXAMPLE.GOV.IQ"
    receipt = sample()
    listed = trustlist.TrustList(1, ISSUED_AT, host, (trustlist.TrustedKey.from_public_key(
        "NIN-MSL-03", key.public_key(), ISSUED_AT - dt.timedelta(days=30), ISSUED_AT + dt.timedelta(days=365)),))
    text = receipts.issue(receipt, key, host, kid=kid)
    now = ISSUED_AT + dt.timedelta(hours=1)
    assert receipts.verify(text, listed, now).is_valid

    # the baseline signs and verifies exactly the bytes COSE signs, with the same ECDSA settings
    signed = receipts.parse_qr_text(text, host)
    protected, _, payload, _ = cbor2.loads(signed).value
    tbs = cbor2.dumps(["Signature1", protected, receipts.RECEIPT_AAD, payload])
    der = key.sign(tbs, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    public = key.public_key()

    base_sign = median_us(lambda: key.sign(tbs, ec.ECDSA(hashes.SHA256(), deterministic_signing=True)), args.rounds)
    base_verify = median_us(lambda: public.verify(der, tbs, ec.ECDSA(hashes.SHA256())), args.rounds)
    ours_sign = median_us(lambda: receipts.issue(receipt, key, host, kid=kid), args.rounds)
    ours_verify = median_us(lambda: receipts.verify(text, listed, now), args.rounds)

    print(f"Receipts: per receipt, median of {args.rounds} (2-core box, ES256 P-256, deterministic)")
    print(f"  {'operation':44} {'median us':>10} {'x baseline':>11}")
    print(f"  {'bare cryptography ECDSA sign (baseline)':44} {base_sign:10.1f} {1:11.2f}")
    print(f"  {'issue: payload + COSE_Sign1 + QR text':44} {ours_sign:10.1f} {ours_sign / base_sign:11.2f}")
    print(f"  {'bare cryptography ECDSA verify (baseline)':44} {base_verify:10.1f} {1:11.2f}")
    print(f"  {'verify: parse + checks + signature':44} {ours_verify:10.1f} {ours_verify / base_verify:11.2f}")

    print("\nQR at level M, 4-module quiet zone, 203 dpi (8 dots/mm)")
    print(f"  {'payload':38} {'COSE B':>6} {'chars':>5} {'V':>3} {'mod':>4} "
          f"{'4 dots/mod':>16} {'5 dots/mod':>16}  segments")
    cases = [
        ("real (host V.EXAMPLE.GOV.IQ)", sample(), host),
        ("real, short host V.MOI.IQ", sample(), "V.MOI.IQ"),
        ("real, fee 1,500,000 IQD, 12-char codes", sample("NIN-MSL-0003", "COMP-HOUSING", "B-1042", 8, 1_500_000), host),
        ("largest allowed (32-char codes, 32 B ref)", sample("C" * 32, "S" * 32, "T" * 32, 32, 10**12), host),
    ]
    for label, item, case_host in cases:
        case_text = receipts.issue(item, key, case_host, kid=kid)
        facts = qr_facts(case_text)
        widths = []
        for dots in (4, 5):
            total = facts["modules"] * dots
            widths.append(f"{total:4d} d {total / DOTS_PER_MM:5.1f} mm")
        cose_len = len(receipts.parse_qr_text(case_text, case_host))
        print(f"  {label:38} {cose_len:6d} {len(case_text):5d} {facts['version']:3d} {facts['modules']:4d} "
              f"{widths[0]:>16} {widths[1]:>16}  {facts['segments']}")
    longest = max(n for n in range(4, 60) if qr_facts(receipts.issue(sample(), key, "V" * n, kid=kid))["version"] <= 10)
    spare = max(n for n in range(0, 28)
                if qr_facts(receipts.issue(sample(ticket="B-042" + "0" * n), key, host, kid=kid))["version"] <= 10)
    print(f"\n  longest verify host keeping the real receipt at version 10: {longest} characters")
    print(f"  headroom at {host}: {spare} more characters of centre/service/ticket codes stay at version 10")
    real = qr_facts(text)
    for paper, dots in PAPER_DOTS.items():
        fits = [str(d) for d in (4, 5, 6) if real["modules"] * d <= dots]
        print(f"  {paper}: real receipt fits at {', '.join(fits)} dots per module")
    bench_printed(args.prints)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
