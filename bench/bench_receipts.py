"""Receipts: sign and verify per receipt against bare `cryptography` ECDSA on the same bytes, and
the QR version and printed width of the real payload at level M.

    .venv/bin/python bench/bench_receipts.py [--rounds 3000]
"""
from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
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


def main(argv: list[str] | None = None) -> int:
    """Run the measurements and print a table with ratios to the baseline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3000)
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
