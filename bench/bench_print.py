"""Printing benchmark: build time, bytes per job, and time from submit to bytes at the printer.

    .venv/bin/python bench/bench_print.py [--n 40] [--jobs 60]

1. Render + encode of a ticket (each language, and one with every line in all three), median of
   n runs; baseline: python-escpos' bare Dummy() raster of a blank image of the same size + cut.
2. Bytes per job with a native QR (GS ( k) and with the QR drawn into the raster.
3. Time from print_ticket() (the ticket is stored) to the last byte at the loopback printer
   double, median and p95; baseline: a bare socket send of the same bytes to the same double.
   Through a private cupsd too, when cupsd is installed and this runs as root.
Aims: build < 50 ms, < 70 KB per ticket, < 100 ms to a network printer.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import socket
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from hardware import check_shaping, encode, get_profile, render, ticket_document  # noqa: E402
from hardware.encoding import new_dummy  # noqa: E402
from hardware.samples import sample_slip, trilingual_document  # noqa: E402
from kiosk.printing import make_printer  # noqa: E402
from tests.hardware.doubles.printer import PrinterDouble  # noqa: E402


def median_ms(samples: list[float]) -> float:
    """Median in milliseconds."""
    return statistics.median(samples) * 1000


def p95_ms(samples: list[float]) -> float:
    """95th percentile in milliseconds."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] * 1000


def timed(fn, n: int) -> list[float]:
    """Run fn n times after one warm-up; seconds per run."""
    fn()
    out = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def bench_build(n: int) -> None:
    """Render + encode against a bare Dummy raster of the same size."""
    profile = get_profile("TM-T20II")
    docs = {lang: ticket_document(sample_slip(lang)) for lang in ("ar", "ckb", "en")}
    docs["trilingual"] = trilingual_document()
    print(f"\n1. render + encode, TM-T20II (576 dots), median of {n}")
    print(f"{'ticket':<12} {'size':>9} {'build ms':>9} {'bare ms':>8} {'x bare':>7}")
    for name, doc in docs.items():
        size = render(doc, profile.width).image.size
        blank = Image.new("1", size, 1)

        def bare():
            """python-escpos alone: a blank raster of the same size, then cut."""
            printer = new_dummy(profile)
            printer.image(blank)
            printer.cut()
            return printer.output

        ours = median_ms(timed(lambda: encode(render(doc, profile.width), profile), n))
        base = median_ms(timed(bare, n))
        print(f"{name:<12} {size[0]:>4}x{size[1]:<4} {ours:>9.1f} {base:>8.1f} {ours / base:>7.2f}")


def bench_bytes() -> None:
    """Job sizes with native and image QR."""
    print("\n2. bytes per job")
    print(f"{'ticket':<12} {'profile':<22} {'native QR':>10} {'image QR':>10} {'ratio':>6}")
    cases = [("ckb", "TM-T20II"), ("ar", "TM-T20II"), ("en", "TM-T20II"), ("trilingual", "TM-T20II"),
             ("ckb", "TM-T88V"), ("ckb", "POS-5890 (no native)")]
    for name, label in cases:
        pname = label.split()[0]
        doc = trilingual_document() if name == "trilingual" else ticket_document(sample_slip(name))
        native_profile = get_profile(pname, qr="native")
        image_profile = get_profile(pname, qr="image")
        native = len(encode(render(doc, native_profile.width), native_profile))
        image = len(encode(render(doc, image_profile.width), image_profile))
        print(f"{name:<12} {label:<22} {native:>10,} {image:>10,} {image / native:>6.2f}")


def bare_send(host: str, port: int, data: bytes) -> None:
    """The baseline: connect, send, half-close, wait for the printer to close."""
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(64):
            pass


def submit_to_bytes(url: str, double: PrinterDouble, jobs: int, data_dir: pathlib.Path) -> list[float]:
    """Seconds from print_ticket() to the job complete at the double, one job at a time."""
    printer = make_printer(url, data_dir)
    samples = []
    try:
        for i in range(jobs + 1):
            before = len(double.jobs)
            started = time.monotonic()
            printer.print_ticket(sample_slip(("ar", "ckb", "en")[i % 3], number=f"A-{i:03d}"))
            if not double.wait_for_jobs(before + 1, 30):
                raise SystemExit(f"job {i} did not reach the printer double")
            if i:  # the first job warms up python-escpos and the fonts
                samples.append(double.job_times[before] - started)
    finally:
        printer.close(timeout=5)
    return samples


def bench_latency(jobs: int) -> None:
    """Submit -> bytes at the loopback double, against a bare socket send of the same bytes."""
    print(f"\n3. submit -> last byte at the printer double, {jobs} jobs one at a time")
    print(f"{'path':<34} {'median ms':>10} {'p95 ms':>8} {'x bare':>7}")
    profile = get_profile("TM-T20II")
    data = encode(render(ticket_document(sample_slip("ckb")), profile.width), profile)
    with tempfile.TemporaryDirectory() as tmp, PrinterDouble() as double:
        base = []
        for _ in range(jobs):
            before = len(double.jobs)
            started = time.monotonic()
            bare_send(double.host, double.port, data)
            double.wait_for_jobs(before + 1, 10)
            base.append(double.job_times[before] - started)
        base_med = median_ms(base)
        print(f"{'bare socket send (same bytes)':<34} {base_med:>10.2f} {p95_ms(base):>8.2f} {1:>7.2f}")
        ours = submit_to_bytes(double.url, double, jobs, pathlib.Path(tmp))
        print(f"{'print_ticket -> escpos+tcp':<34} {median_ms(ours):>10.2f} {p95_ms(ours):>8.2f} "
              f"{median_ms(ours) / base_med:>7.2f}")
        cups = cups_latency(double, jobs, pathlib.Path(tmp))
        if cups:
            print(f"{'print_ticket -> cups raw queue':<34} {median_ms(cups):>10.2f} {p95_ms(cups):>8.2f} "
                  f"{median_ms(cups) / base_med:>7.2f}")


def cups_latency(double: PrinterDouble, jobs: int, data_dir: pathlib.Path) -> list[float] | None:
    """The same through a private cupsd and a raw queue, when possible."""
    import os

    if shutil.which("cupsd") is None or os.geteuid() != 0:
        print(f"{'print_ticket -> cups raw queue':<34} skipped (needs cupsd and root)")
        return None
    from tests.hardware.conftest import PrivateCups, free_port

    root = pathlib.Path(tempfile.mkdtemp(prefix="kiosk-cupsd-"))
    cups = PrivateCups(root, free_port())
    try:
        cups.configure()
        cups.start()
        cups.add_raw_queue("bench", double.port)
        return submit_to_bytes(f"cups://{cups.server}/bench?profile=TM-T20II", double, jobs, data_dir)
    finally:
        cups.stop()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    """Run all three parts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="runs per build measurement")
    parser.add_argument("--jobs", type=int, default=60, help="jobs per latency measurement")
    args = parser.parse_args()
    check_shaping()
    bench_build(args.n)
    bench_bytes()
    bench_latency(args.jobs)


if __name__ == "__main__":
    main()
