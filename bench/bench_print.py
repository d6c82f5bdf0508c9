"""Printing benchmark: build time, bytes per job, time from submit to bytes at the printer, and what
printing costs the ticket request.

    .venv/bin/python bench/bench_print.py [--n 40] [--jobs 60] [--waiting 5000] [--posts 150]
                                          [--rounds 8] [--burst 2000] [--clients 8] [--parts 1,2,3,4]

1. Render + encode of a ticket (each language, and one with every line in all three), median of
   n runs; baseline: python-escpos' bare Dummy() raster of a blank image of the same size + cut.
2. Bytes per job with a native QR (GS ( k) and with the QR drawn into the raster.
3. Time from print_ticket() (the ticket is stored) to the last byte at the loopback printer
   double, median and p95; baseline: a bare socket send of the same bytes to the same double.
   Through a private cupsd too, when cupsd is installed and this runs as root.
4. What printing costs a ticket: `flask --app kiosk serve` in a child process over a store with
   --waiting tickets waiting in one service, the default preview printer on against PRINTER_URL=off,
   each on a fresh copy of the same seeded data, in --rounds turns: median and p95 of --posts
   sequential POST /api/v1/tickets (one keep-alive client); then a burst of --burst tickets from
   --clients clients on each: its rate, the tickets printed by the burst's end, and how long until
   every one is printed.
Aims: build < 50 ms, < 70 KB per ticket, < 100 ms to a network printer; ticket POST median with the
preview printer within 1.2x of printing off; every ticket of the burst printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pathlib
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
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


def seed(data_dir: pathlib.Path, waiting: int) -> None:
    """The demo centre with `waiting` tickets of today waiting for service A, then a snapshot."""
    from kiosk import create_app, services
    from kiosk.domain.tickets import new_ticket
    from kiosk.ids import new_ulid

    app = create_app({"DATA_DIR": str(data_dir), "PRINTER_URL": "off", "SECRET_KEY": "bench"})
    centre = app.extensions["kiosk"].centre
    services.load_demo_data(centre)
    store, now = centre.store, centre.clock.now()
    store.storage.fsync = False
    service = store.get("services", "A")
    day = centre.today(now)
    with store.transaction():
        for n in range(1, waiting + 1):
            at = now - dt.timedelta(seconds=waiting - n)
            centre.tickets.save(new_ticket(ticket_id=new_ulid(int(at.timestamp() * 1000)), service=service, n=n,
                                           day=day, priority="normal", lang="ar", now=at, device=store.device_id))
        store.put("numbering", {"id": f"{day}:A", "day": day, "service": "A", "last": waiting})
    store.compact()
    app.extensions["kiosk"].close()


def printed_so_far(data_dir: pathlib.Path) -> int:
    """Tickets the kiosk's print worker has printed in this run (its status report)."""
    try:
        return json.loads((data_dir / "print-spool" / "status.json").read_bytes()).get("printed", 0)
    except (OSError, ValueError):
        return 0


class Kiosk:
    """`flask --app kiosk serve` on a copy of the seeded data directory."""

    def __init__(self, seeded: pathlib.Path, work: pathlib.Path, printer_url: str):
        """Copy the data and start serving."""
        import requests

        self.data_dir = pathlib.Path(tempfile.mkdtemp(prefix="kiosk-", dir=work))
        shutil.copytree(seeded, self.data_dir, dirs_exist_ok=True)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "KIOSK_DATA_DIR": str(self.data_dir), "KIOSK_PRINTER_URL": printer_url,
               "KIOSK_TICKET_RATE_PER_MIN": "0", "KIOSK_SECRET_KEY": "bench"}
        self.proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "kiosk", "serve", "--port", str(port)],
                                     cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(600):
            try:
                requests.get(f"{self.url}/api/v1/services", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.05)
        self.stop()
        raise SystemExit("the kiosk did not start")

    def stop(self) -> None:
        """Stop the server, then wait for its print worker to let go of the spool."""
        import fcntl

        self.proc.terminate()
        self.proc.wait(60)
        lock = self.data_dir / "print-spool" / "worker.lock"
        if lock.exists():
            with open(lock, "rb") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
        shutil.rmtree(self.data_dir, ignore_errors=True)


def sequential_posts(url: str, n: int) -> list[float]:
    """n POSTs one after the other on one keep-alive connection; seconds each."""
    import requests

    out = []
    with requests.Session() as session:
        for i in range(n + 20):
            started = time.perf_counter()
            answer = session.post(f"{url}/api/v1/tickets", json={"service": "A"}, timeout=30)
            if i >= 20:  # warm-up: the first tickets start the print worker and load the fonts
                out.append(time.perf_counter() - started)
            assert answer.status_code == 201, answer.text
    return out


def burst(url: str, tickets: int, clients: int) -> float:
    """`tickets` POSTs from `clients` threads as fast as they answer; seconds for all of them."""
    import requests

    left = iter(range(tickets))
    lock = threading.Lock()
    failures = []

    def client():
        """Take tickets until none are left."""
        with requests.Session() as session:
            while True:
                with lock:
                    if next(left, None) is None:
                        return
                answer = session.post(f"{url}/api/v1/tickets", json={"service": "B"}, timeout=60)
                if answer.status_code != 201:
                    failures.append(answer.status_code)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"{len(failures)} burst requests failed: {sorted(set(failures))}")
    return time.monotonic() - started


def run_burst(seeded: pathlib.Path, work: pathlib.Path, printer_url: str, tickets: int,
              clients: int) -> tuple[float, int | None, float | None]:
    """A burst on a fresh kiosk: tickets/s, tickets printed by its end, seconds until all are printed."""
    kiosk = Kiosk(seeded, work, printer_url)
    try:
        took = burst(kiosk.url, tickets, clients)
        if printer_url == "off":
            return tickets / took, None, None
        ended = time.monotonic()
        by_end = printed_so_far(kiosk.data_dir)
        while printed_so_far(kiosk.data_dir) < tickets and time.monotonic() < ended + 900:
            time.sleep(0.1)
        done = printed_so_far(kiosk.data_dir) >= tickets
        return tickets / took, by_end, (time.monotonic() - ended) if done else None
    finally:
        kiosk.stop()


def bench_issue(waiting: int, posts: int, tickets: int, clients: int, rounds: int) -> None:
    """Ticket POST with the preview printer on against printing off, same data, in turns."""
    print(f"\n4. POST /api/v1/tickets with {waiting:,} waiting in one service, preview printer on vs "
          f"PRINTER_URL=off: {rounds} rounds of {posts} sequential posts each, in turns")
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        work = pathlib.Path(tmp)
        seeded = work / "seeded"
        seed(seeded, waiting)
        samples: dict[str, list[float]] = {"off": [], "": []}
        per_round = []
        # Short rounds in turns: this machine's load from other jobs moves by more than the effect.
        for _ in range(rounds):
            medians = {}
            for url in ("off", ""):
                kiosk = Kiosk(seeded, work, url)
                try:
                    xs = sequential_posts(kiosk.url, posts)
                finally:
                    kiosk.stop()
                samples[url] += xs
                medians[url] = statistics.median(xs)
            per_round.append(medians[""] / medians["off"])
        off, on = sorted(samples["off"]), sorted(samples[""])
        print(f"{'printer':<26} {'median ms':>10} {'p95 ms':>8} {'x off':>7}")
        for name, xs in (("PRINTER_URL=off", off), ("preview (print worker)", on)):
            print(f"{name:<26} {median_ms(xs):>10.2f} {p95_ms(xs):>8.2f} {median_ms(xs) / median_ms(off):>7.2f}")
        print("per round, preview/off: " + " ".join(f"{r:.2f}" for r in per_round)
              + f" (median {statistics.median(per_round):.2f}; aim <= 1.2)")

        print(f"\n   a burst of {tickets:,} tickets from {clients} clients on a fresh kiosk")
        print(f"{'printer':<26} {'tickets/s':>10} {'printed by its end':>19} {'all printed after s':>20}")
        rate_off, _, _ = run_burst(seeded, work, "off", tickets, clients)
        rate_on, by_end, all_done = run_burst(seeded, work, "", tickets, clients)
        print(f"{'PRINTER_URL=off':<26} {rate_off:>10.1f} {'-':>19} {'-':>20}")
        print(f"{'preview (print worker)':<26} {rate_on:>10.1f} {f'{by_end:,} of {tickets:,}':>19} "
              f"{f'{all_done:.1f}' if all_done is not None else 'NOT ALL':>20}")
        print(f"burst rate preview/off: {rate_on / rate_off:.2f}x")


def main() -> None:
    """Run the parts asked for (all by default)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="runs per build measurement")
    parser.add_argument("--jobs", type=int, default=60, help="jobs per latency measurement")
    parser.add_argument("--waiting", type=int, default=5000, help="tickets waiting before part 4")
    parser.add_argument("--posts", type=int, default=150, help="sequential ticket posts per round of part 4")
    parser.add_argument("--burst", type=int, default=2000, help="tickets in part 4's burst")
    parser.add_argument("--clients", type=int, default=8, help="clients in part 4's burst")
    parser.add_argument("--rounds", type=int, default=8, help="turns of printing off / on in part 4")
    parser.add_argument("--parts", default="1,2,3,4", help="which parts to run, e.g. 4")
    args = parser.parse_args()
    parts = {int(x) for x in args.parts.split(",")}
    check_shaping()
    if 1 in parts:
        bench_build(args.n)
    if 2 in parts:
        bench_bytes()
    if 3 in parts:
        bench_latency(args.jobs)
    if 4 in parts:
        bench_issue(args.waiting, args.posts, args.burst, args.clients, args.rounds)


if __name__ == "__main__":
    main()
