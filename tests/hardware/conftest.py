"""Fixtures for the printing tests: the loopback printer double, kiosk printers that are always
closed, and a private CUPS scheduler in a temporary directory on a free loopback port."""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from kiosk.printing import make_printer
from tests.hardware.doubles.printer import PrinterDouble
from tests.processes import free_port

GOLDEN_DIR = pathlib.Path(__file__).resolve().parent / "golden"


@pytest.fixture(autouse=True)
def no_leftover_threads():
    """Fail a test that leaves a print worker, double or other thread running behind it."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while True:
        left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not left, f"threads left running: {[t.name for t in left]}"


@pytest.fixture
def double():
    """A printer double on a free loopback port, stopped after the test."""
    with PrinterDouble() as printer:
        yield printer


@pytest.fixture
def kiosk_printer(data_dir, clock):
    """Build KioskPrinters with fast retries; every one is closed after the test."""
    made = []

    def build(url, **kwargs):
        """make_printer with test-friendly retry timing."""
        kwargs.setdefault("retry_initial_s", 0.05)
        kwargs.setdefault("retry_max_s", 0.2)
        kwargs.setdefault("poll_interval_s", 0.2)
        printer = make_printer(url, data_dir, clock=clock, **kwargs)
        made.append(printer)
        return printer

    yield build
    for printer in made:
        printer.close(timeout=0)


class PrivateCups:
    """A cupsd of our own: its own config, spool, logs and port; nothing of the system's."""

    def __init__(self, root: pathlib.Path, port: int):
        """Write the configuration; start() runs the scheduler."""
        self.root, self.port, self.host = root, port, "127.0.0.1"
        self.process: subprocess.Popen | None = None

    @property
    def server(self) -> str:
        """HOST:PORT for lpadmin -h and friends."""
        return f"{self.host}:{self.port}"

    def configure(self) -> None:
        """Lay out the directories and write cupsd.conf / cups-files.conf."""
        for sub in ("spool", "spool/tmp", "cache", "state", "log", "ppd", "ssl"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        # Backends run as user lp: the spool must be reachable and writable by group lp.
        os.chmod(self.root, 0o755)
        for sub in ("spool", "spool/tmp", "cache", "state"):
            shutil.chown(self.root / sub, "root", "lp")
            os.chmod(self.root / sub, 0o775)
        (self.root / "cupsd.conf").write_text(
            f"""LogLevel warn
Listen {self.host}:{self.port}
Browsing No
BrowseLocalProtocols none
WebInterface No
DefaultAuthType None
MaxJobs 500
PreserveJobHistory No
<Location />
  Order allow,deny
  Allow from 127.0.0.1
</Location>
<Location /admin>
  Order allow,deny
  Allow from 127.0.0.1
</Location>
<Policy default>
  <Limit All>
    Order deny,allow
    Allow from 127.0.0.1
  </Limit>
</Policy>
"""
        )
        (self.root / "cups-files.conf").write_text(
            f"""ServerRoot {self.root}
RequestRoot {self.root}/spool
TempDir {self.root}/spool/tmp
CacheDir {self.root}/cache
StateDir {self.root}/state
AccessLog {self.root}/log/access_log
ErrorLog {self.root}/log/error_log
PageLog {self.root}/log/page_log
User lp
Group lp
"""
        )

    def start(self) -> None:
        """Run cupsd in the foreground of a child process and wait until it answers."""
        self.process = subprocess.Popen(
            ["cupsd", "-f", "-c", str(self.root / "cupsd.conf"), "-s", str(self.root / "cups-files.conf")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"cupsd exited at start: {self.process.stderr.read().decode(errors='replace')}"
                                   f"\n{self.error_log()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"cupsd did not listen on {self.server} within 15 s\n{self.error_log()}")

    def error_log(self) -> str:
        """The scheduler's error log (for failure messages)."""
        path = self.root / "log" / "error_log"
        return path.read_text(errors="replace") if path.exists() else ""

    def run(self, *command: str) -> subprocess.CompletedProcess:
        """Run a CUPS admin command (lpadmin, cupsdisable ...) against this scheduler."""
        result = subprocess.run([command[0], "-h", self.server, *command[1:]], capture_output=True, text=True,
                                timeout=30)
        if result.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed: {result.stderr}\n{self.error_log()}")
        return result

    def add_raw_queue(self, name: str, device_port: int) -> None:
        """A raw queue sending to the printer double; retry on failure instead of stopping."""
        self.run("lpadmin", "-p", name, "-E", "-v", f"socket://127.0.0.1:{device_port}", "-m", "raw",
                 "-o", "printer-error-policy=retry-job", "-o", "printer-is-shared=false")

    def stop(self) -> None:
        """Stop the scheduler and its backends."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None


@pytest.fixture(scope="module")
def private_cupsd():
    """A private cupsd for this test module; fails (never skips) when CUPS is not installed."""
    missing = [tool for tool in ("cupsd", "lpadmin", "cupsdisable", "cupsenable") if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"CUPS tools missing: {', '.join(missing)}. Install the Debian packages cups and libcups2-dev "
            "(the README's test command does) to run the CUPS printing tests.", pytrace=False
        )
    if os.geteuid() != 0:
        pytest.fail("the private cupsd fixture needs root (cupsd runs its backends as user lp)", pytrace=False)
    # Not pytest's tmp_path: that lives under a 0700 directory the lp user cannot traverse.
    root = pathlib.Path(tempfile.mkdtemp(prefix="kiosk-cupsd-"))
    cups = PrivateCups(root, free_port())
    try:
        cups.configure()
        cups.start()
        yield cups
    finally:
        cups.stop()
        shutil.rmtree(root, ignore_errors=True)


def regenerate_golden() -> bool:
    """Whether golden images should be rewritten instead of compared (explicit opt-in)."""
    return os.environ.get("KIOSK_REGEN_GOLDEN") == "1"
