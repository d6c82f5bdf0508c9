"""The kiosk-side sync agent: `flask --app kiosk sync` pushes the store's journal to central and
pulls central's configuration into the kiosk's inbox, then exits (cron runs it every minute).

It never opens the store for writing and never talks to the running kiosk: it reads the journal
through `kiosk.store.feed` (read-only, durable lines only), keeps its own cursor in
DATA/sync/state.json, and leaves pulled configuration in DATA/sync/inbox/ for the kiosk to apply
(`sync.inbox.apply_inbox`). `acked_seq` in state.json is written only after central has durably
acknowledged, because the store deletes journal segments at or below it.

When nothing was written since the last run, the push side costs one listdir, one stat and
reading state.json; the pull side is one small signed request.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import queue
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import click
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import current_app
from flask.cli import with_appcontext
from pydantic import ValidationError

from kiosk.clock import SystemClock
from kiosk.domain import audit
from kiosk.store import device_identity
from kiosk.store import feed
from kiosk.store.journal import JOURNAL, RESTORE, decode_commit, list_segments
from sync import protocol
from sync.files import private_dir, write_atomic

log = logging.getLogger(__name__)

SYNC_DIR = "sync"
STATE_FILE = "state.json"
CREDENTIAL_FILE = "credential.json"
INBOX_DIR = "inbox"
FAILED_DIR = "failed"
LOCK_FILE = "agent.lock"

# exit codes (sysexits.h), so a supervisor or cron wrapper can tell causes apart
EXIT_UNREACHABLE = 69   # EX_UNAVAILABLE: no answer from central, or it failed (5xx)
EXIT_DATA = 65          # EX_DATAERR: the journal and central disagree; a person must look
EXIT_BUSY = 75          # EX_TEMPFAIL: another sync is running
EXIT_REFUSED = 77       # EX_NOPERM: central refused (revoked, bad credential, invalid request)
EXIT_CONFIG = 78        # EX_CONFIG: not enrolled, or enrolled for another centre


class SyncFailed(Exception):
    """A sync round could not finish; the message is for the person reading cron's mail."""

    exit_code = EXIT_UNREACHABLE

    def __init__(self, message: str, *, code: str | None = None):
        """Keep the message and central's error code, if any."""
        super().__init__(message)
        self.code = code


class CentralUnreachable(SyncFailed):
    """No usable answer from central (network down, timeout, 5xx)."""


class CentralRefused(SyncFailed):
    """Central answered and said no."""

    exit_code = EXIT_REFUSED


class NotEnrolled(SyncFailed):
    """This kiosk has no credential (or one for another centre)."""

    exit_code = EXIT_CONFIG


class JournalMismatch(SyncFailed):
    """The kiosk's journal and central's cursor cannot both be right."""

    exit_code = EXIT_DATA


class Busy(SyncFailed):
    """Another sync run holds the lock."""

    exit_code = EXIT_BUSY


class _Gap(Exception):
    """Central wants the batch to start at an earlier sequence."""

    def __init__(self, expected: int):
        """Remember where central wants to resume."""
        super().__init__(expected)
        self.expected = expected


# -- files ---------------------------------------------------------------------------------------

def sync_dir(data_dir: Path) -> Path:
    """DATA/sync, where the agent keeps everything it owns."""
    return Path(data_dir) / SYNC_DIR


def read_state(data_dir: Path) -> dict:
    """The agent's state (cursor, pull cursor, last results); empty when never synced."""
    path = sync_dir(data_dir) / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"acked_seq": 0}
    except (ValueError, UnicodeDecodeError) as exc:
        # the cursor is only an optimisation: central's own cursor tells us where to resume
        log.warning("ignoring unreadable %s (%s); central's cursor will be used", path, exc)
        return {"acked_seq": 0}
    if not isinstance(state, dict) or not isinstance(state.get("acked_seq", 0), int):
        log.warning("ignoring malformed %s; central's cursor will be used", path)
        return {"acked_seq": 0}
    state.setdefault("acked_seq", 0)
    return state


def write_state(data_dir: Path, state: dict) -> None:
    """Replace state.json atomically (the store reads acked_seq from it at compaction)."""
    directory = sync_dir(data_dir)
    private_dir(directory)
    write_atomic(directory / STATE_FILE, json.dumps(state, sort_keys=True).encode("utf-8"))


@dataclass(frozen=True)
class Credential:
    """What enrolment gave this kiosk: where central is, who we are, our signing key."""

    central_url: str
    device_id: str
    centre: str
    label: str
    key_id: str
    private_key: Ed25519PrivateKey
    enrolled_at: str

    def to_json(self) -> dict:
        """The credential file's content."""
        return {"v": 1, "central_url": self.central_url, "device_id": self.device_id,
                "centre": self.centre, "label": self.label, "key_id": self.key_id,
                "private_key": protocol.b64url(protocol.private_key_bytes(self.private_key)),
                "enrolled_at": self.enrolled_at}


def load_credential(data_dir: Path) -> Credential:
    """The enrolled credential, or NotEnrolled with what to do."""
    path = sync_dir(data_dir) / CREDENTIAL_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        key = Ed25519PrivateKey.from_private_bytes(protocol.unb64url(raw["private_key"]))
        return Credential(central_url=raw["central_url"], device_id=raw["device_id"], centre=raw["centre"],
                          label=raw["label"], key_id=raw["key_id"], private_key=key,
                          enrolled_at=raw["enrolled_at"])
    except FileNotFoundError:
        raise NotEnrolled("this kiosk is not enrolled: ask central for a code, then run "
                          "`flask --app kiosk enroll CENTRAL_URL CODE`") from None
    except (ValueError, KeyError, TypeError, protocol.ProtocolError) as exc:
        raise NotEnrolled(f"{path} is unreadable ({exc}); enrol this kiosk again") from None


def journal_last_seq(store_dir: Path) -> int:
    """The last durable commit's seq, reading only the tail of the newest segment."""
    segments = list_segments(Path(store_dir) / JOURNAL)
    for first, path in reversed(segments):
        try:
            with open(path, "rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                if size == 0:
                    if first > 1:
                        return first - 1  # a fresh segment after compaction: the previous commit ends it
                    continue
                start = max(0, size - 65536)
                fh.seek(start)
                tail = fh.read()
        except FileNotFoundError:
            continue
        lines = tail.split(b"\n")
        for line in reversed(lines[:-1]):  # the last piece has no newline: not a complete line
            commit = decode_commit(line + b"\n")
            if commit is not None:
                return commit["s"]
        if start > 0:
            return feed.head_seq(store_dir)  # a single commit larger than the tail window
        if first > 1:
            return first - 1
    return 0


# -- the agent -----------------------------------------------------------------------------------

@dataclass
class Outcome:
    """What one round did."""

    pushed_commits: int = 0
    acked_seq: int = 0
    pulled_changes: int = 0
    inbox_file: str | None = None
    # central's verdict on this round's audit checkpoint if one was sent ("unsupported": an older central)
    checkpoint: str | None = None


class Agent:
    """One kiosk's sync client: push the journal, pull configuration, remember where it is."""

    def __init__(self, data_dir: str | os.PathLike, *, centre: str | None = None, clock=None,
                 session: requests.Session | None = None,
                 batch_commits: int = protocol.DEFAULT_BATCH_COMMITS,
                 batch_bytes: int = protocol.DEFAULT_BATCH_BYTES, timeout: tuple[float, float] = (10, 30),
                 retries: int = 2, retry_delay_s: float = 0.5):
        """Set up for `data_dir`; `centre` is the kiosk's configured centre (checked against the credential)."""
        self.data_dir = Path(data_dir)
        self.store_dir = self.data_dir / "store"
        self.centre = centre
        self.clock = clock or SystemClock()
        self.session = session or requests.Session()
        self.batch_commits = batch_commits
        self.batch_bytes = batch_bytes
        self.timeout = timeout
        self.retries = retries
        self.retry_delay_s = retry_delay_s
        self.state: dict = {}
        self.credential: Credential | None = None

    # -- the round ---------------------------------------------------------------------------

    def run(self, progress=None) -> Outcome:
        """One push + pull round; raises SyncFailed (with an exit code) when it cannot finish."""
        private_dir(sync_dir(self.data_dir))
        lock_fd = os.open(sync_dir(self.data_dir) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise Busy("another sync is running for this data directory") from None
            return self._run_locked(progress)
        finally:
            os.close(lock_fd)

    def _run_locked(self, progress) -> Outcome:
        """The round itself, under the agent's lock."""
        self.state = read_state(self.data_dir)
        started = self.clock.now()
        self.state["last_attempt_at"] = protocol.utc_iso(started)
        outcome = Outcome()
        try:
            self.credential = load_credential(self.data_dir)
            if self.centre and self.credential.centre != self.centre:
                raise NotEnrolled(f"this kiosk is configured as centre {self.centre} but enrolled for "
                                  f"{self.credential.centre}; fix CENTRE or enrol again")
            outcome.pushed_commits = self.push(progress)
            outcome.acked_seq = self.state["acked_seq"]
            outcome.checkpoint = self.checkpoint()
            outcome.pulled_changes, outcome.inbox_file = self.pull()
        except SyncFailed as exc:
            self.state["last_error"] = str(exc)
            write_state(self.data_dir, self.state)
            raise
        self.state["last_success_at"] = protocol.utc_iso(self.clock.now())
        self.state["last_error"] = None
        write_state(self.data_dir, self.state)
        return outcome

    def push(self, progress=None) -> int:
        """Send every commit after acked_seq, batch by batch; return how many commits were sent.

        The next batch is read and encoded in a helper thread while the current one is on the
        wire, so a long backlog costs about max(encode, round trip) per batch, not their sum.
        """
        head = feed.head(self.store_dir)
        if self.state.get("position") == head:
            return 0
        acked = int(self.state.get("acked_seq", 0))
        position = self.state.get("position")
        head_seq = journal_last_seq(self.store_dir)
        if progress is not None:
            progress.start(max(head_seq - acked, 0))
        sent = 0
        while True:
            with _Prefetch(self._batches(acked, position, head_seq)) as batches:
                for batch in batches:
                    if batch.body is None:
                        self.state["position"] = batch.after
                        write_state(self.data_dir, self.state)
                        return sent
                    try:
                        reply = self._send_push(batch.body)
                    except _Gap as gap:
                        if gap.expected <= acked:
                            log.warning("central has this kiosk's journal only up to %d (we had %d "
                                        "acknowledged); resending from there", gap.expected - 1, acked)
                            acked, position = gap.expected - 1, None
                            break
                        raise JournalMismatch(
                            f"central needs commits from {gap.expected} but this kiosk's journal now starts "
                            f"at {batch.first}: central has lost records the kiosk no longer holds; see "
                            "docs/sync.md, 'Central restored from a backup'") from None
                    if reply.acked_seq < batch.last:
                        raise CentralRefused(f"central acknowledged {reply.acked_seq}, less than the "
                                             f"{batch.last} it was sent")
                    local_head = journal_last_seq(self.store_dir) if reply.acked_seq > batch.last else 0
                    if reply.acked_seq > batch.last and reply.acked_seq > local_head:
                        raise JournalMismatch(
                            f"central has acknowledged commits up to {reply.acked_seq} but this kiosk's "
                            f"journal ends at {local_head}: the data directory was restored from an older "
                            "backup; see docs/sync.md, 'Restored kiosk' and docs/backup.md")
                    sent += batch.count
                    if progress is not None:
                        progress.advance(batch.count)
                    # central may be ahead of our cursor (state.json restored from an old backup):
                    # then jump there and read on from it
                    jumped = reply.acked_seq > batch.last
                    acked, position = reply.acked_seq, None if jumped else batch.after
                    self.state["acked_seq"], self.state["position"] = acked, position
                    if batch.audit_head is not None:
                        self.state["audit_head"] = {**batch.audit_head, "seq": batch.last}
                    write_state(self.data_dir, self.state)
                    if jumped:
                        break

    def _batches(self, acked: int, position, head_seq: int):
        """Encoded batches after `acked`, each assuming the one before it was acknowledged whole."""
        while True:
            commits, after = feed.read(self.store_dir, acked, position=position,
                                       max_commits=self.batch_commits, max_bytes=self.batch_bytes)
            if not commits:
                yield _Batch(first=0, last=acked, count=0, body=None, after=after)
                return
            commits, after = self._across_restore(commits, after, acked)
            first, last = commits[0]["s"], commits[-1]["s"]
            # the journal may no longer hold acked+1.. (a cursor restored from an old backup, after
            # the store trimmed segments central had acknowledged): say honestly where we start
            from_seq = acked + 1 if first <= acked + 1 else first
            head_seq = max(head_seq, last)
            yield _Batch(first=first, last=last, count=len(commits), after=after,
                         body=protocol.gzip_json(self._payload(commits, from_seq, head_seq)),
                         audit_head=_audit_head(commits))
            acked, position = last, after

    def _across_restore(self, commits: list[dict], after, acked: int) -> tuple[list[dict], object]:
        """A restore moves the journal's numbering on (kiosk.usecases.backup): its commit
        {"o": "restore", "b": B} follows commit B with a higher number, so that new commits never
        reuse numbers central may already hold. Central sees the numbers in between as empty
        commits, sent only once central has acknowledged what comes before them (so none of them
        ever stands for a commit central holds); a batch therefore ends before such a commit."""
        cut = next((i for i, c in enumerate(commits) if i and c.get("o") == RESTORE), None)
        if cut is not None:
            return commits[:cut], None
        marker = commits[0]
        if marker.get("o") != RESTORE or marker["s"] <= acked + 1:
            return commits, after
        count = min(marker["s"] - acked - 1, self.batch_commits)
        fillers = [{"s": s, "at": marker.get("at", ""), "h": marker.get("h", ""), "c": []}
                   for s in range(acked + 1, acked + 1 + count)]
        if acked + count < marker["s"] - 1:
            return fillers, None  # a long gap: empty commits only, the restore's own commit later
        return fillers + commits, after

    def _payload(self, commits: list[dict], from_seq: int, head_seq: int) -> dict:
        """The push message: only kiosk-authoritative changes; other commits (central's
        configuration applied, finished records moved to the day archive) go as empty stubs."""
        wire = []
        for commit in commits:
            if commit.get("o") in protocol.UNPUSHED_ORIGINS:
                changes = []  # configuration applied from central, or records moved to the archive
            else:
                changes = [_wire(c) for c in commit.get("c", []) if isinstance(c, dict) and c.get("t") in protocol.PUSH_TABLES]
            wire.append({"s": commit["s"], "at": commit.get("at", ""), "h": commit.get("h", ""), "c": changes})
        return {"v": protocol.VERSION, "device_id": self.credential.device_id, "from_seq": from_seq,
                "to_seq": commits[-1]["s"], "head_seq": head_seq,
                "device_time": protocol.utc_iso(self.clock.now()), "commits": wire}

    def checkpoint(self) -> str | None:
        """Sign the head of the audit chain as pushed and send it to central, when it moved since
        the last checkpoint central accepted; central's verdict (pending, ok, flagged) or None."""
        head = self.state.get("audit_head")
        if not isinstance(head, dict) or head == self.state.get("checkpointed"):
            return None
        doc = audit.make_checkpoint(
            self.credential.private_key, checkpoint_id=f"sync-{head['seq']}-{head['n']}", kind="sync",
            device_id=self.credential.device_id, centre=self.credential.centre, n=head["n"],
            head_hash=head["hash"], at=protocol.utc_iso(self.clock.now()), seq=head["seq"])
        try:
            data = self._request("POST", "/checkpoint", body=protocol.gzip_json({"v": protocol.VERSION, "checkpoint": doc}))
        except CentralRefused as exc:
            if exc.code not in (None, "not_found"):
                raise
            # a central older than checkpoints: records still flow; the head is signed again next time
            log.warning("central does not take audit checkpoints (%s); update central", exc)
            return "unsupported"
        try:
            reply = protocol.CheckpointResponse.model_validate(data)
        except ValidationError as exc:
            raise CentralUnreachable(f"central's answer to a checkpoint is not understood: {protocol.describe(exc)}") from None
        self.state["checkpointed"] = head
        write_state(self.data_dir, self.state)
        if reply.status == "flagged":
            log.warning("central flagged this centre's audit chain at checkpoint %d", head["n"])
        return reply.status

    def _send_push(self, body: bytes) -> protocol.PushResponse:
        """Send one encoded batch and read central's acknowledgement."""
        data = self._request("POST", "/push", body=body)
        try:
            return protocol.PushResponse.model_validate(data)
        except ValidationError as exc:
            raise CentralUnreachable(f"central's answer to a push is not understood: {protocol.describe(exc)}") from None

    def pull(self) -> tuple[int, str | None]:
        """Fetch configuration changes after the pull cursor into one inbox file; (changes, file name)."""
        since = int(self.state.get("pull_since", 0))
        cursor = since
        changes: list[protocol.PulledChange] = []
        head_seq = journal_last_seq(self.store_dir)
        while True:
            query = urlencode({"since": cursor, "limit": 500, "head_seq": head_seq})
            data = self._request("GET", "/pull", query=query)
            try:
                page = protocol.PullResponse.model_validate(data)
                for change in page.changes:
                    change.check()
            except (ValidationError, protocol.ProtocolError) as exc:
                detail = protocol.describe(exc) if isinstance(exc, ValidationError) else str(exc)
                raise CentralUnreachable(f"central's configuration page is not understood: {detail}") from None
            if page.centre != self.credential.centre:
                raise CentralRefused(f"central sent configuration of centre {page.centre}, not {self.credential.centre}")
            changes.extend(page.changes)
            if page.has_more and page.next_since <= cursor:
                raise CentralUnreachable("central's configuration feed did not advance")
            cursor = page.next_since
            if not page.has_more:
                break
        if not changes:
            return 0, None
        inbox = sync_dir(self.data_dir) / INBOX_DIR
        private_dir(inbox)
        name = f"{cursor:012d}.json"
        body = protocol.InboxFile(v=protocol.VERSION, since=since, next_since=cursor,
                                  pulled_at=protocol.utc_iso(self.clock.now()), changes=changes)
        # the file first, then the cursor: a crash in between only pulls the same changes again
        write_atomic(inbox / name, body.model_dump_json().encode("utf-8"))
        self.state["pull_since"] = cursor
        write_state(self.data_dir, self.state)
        return len(changes), name

    # -- HTTP ------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, body: bytes = b"", query: str = "") -> dict:
        """Send one signed request, retrying what is worth retrying; the decoded JSON answer."""
        url = self.credential.central_url.rstrip("/") + protocol.API_PREFIX + path
        signed_path = urlsplit(url).path + (f"?{query}" if query else "")
        if query:
            url = f"{url}?{query}"
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._send_once(method, url, signed_path, body)
            except _Retry as exc:
                if attempt > self.retries:
                    raise exc.failure from None
                log.info("retrying %s %s after: %s", method, path, exc.failure)
                time.sleep(self.retry_delay_s * (2 ** (attempt - 1)) * random.uniform(0.8, 1.2))

    def _send_once(self, method: str, url: str, signed_path: str, body: bytes) -> dict:
        """One attempt: sign, send, measure the clock offset, classify the answer."""
        content_type = "application/json" if body else ""
        content_encoding = "gzip" if body else ""
        sent_at = self.clock.now()
        offset = float(self.state.get("clock_offset_s") or 0.0)
        headers = protocol.sign_headers(
            self.credential.private_key, device_id=self.credential.device_id, method=method,
            path=signed_path, body=body, content_type=content_type, content_encoding=content_encoding,
            now_s=int(sent_at.timestamp() + offset), device_time=protocol.utc_iso(sent_at))
        if body:
            headers["Content-Type"] = content_type
            headers["Content-Encoding"] = content_encoding
        try:
            response = self.session.request(method, url, data=body or None, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise _Retry(CentralUnreachable(f"central is unreachable at {self.credential.central_url}: "
                                            f"{exc.__class__.__name__}")) from None
        received_at = self.clock.now()
        self._observe_clock(response, sent_at, received_at)
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code < 300 and isinstance(data, dict):
            return data
        error = data.get("error", {}) if isinstance(data, dict) else {}
        code = error.get("code") if isinstance(error, dict) else None
        message = (error.get("message") if isinstance(error, dict) else None) or response.reason or "no details"
        status = response.status_code
        if status >= 500 or status < 300:
            raise _Retry(CentralUnreachable(f"central failed ({status}): {message}", code=code))
        if code is None:
            raise CentralRefused(f"{self.credential.central_url} answered {status} {message}: "
                                 "is it the central server's URL?")
        if code == "sequence_gap" and isinstance(error.get("expected_from_seq"), int):
            raise _Gap(error["expected_from_seq"])
        if code in ("stale_timestamp", "replayed_request"):
            # our offset was just re-measured; a replay means someone duplicated our request
            raise _Retry(CentralRefused(f"central refused the request ({code}): {message}", code=code))
        if code == "history_diverged":
            raise JournalMismatch(message, code=code)
        raise CentralRefused(f"central refused the request ({status} {code}): {message}", code=code)

    def _observe_clock(self, response, sent_at: dt.datetime, received_at: dt.datetime) -> None:
        """Record server minus device clock, taking the request's midpoint as the device's reading."""
        server_time = response.headers.get("Sync-Server-Time")
        if not server_time:
            return
        try:
            server = protocol.parse_utc(server_time)
        except protocol.ProtocolError:
            return
        midpoint = sent_at + (received_at - sent_at) / 2
        self.state["clock_offset_s"] = round((server - midpoint).total_seconds(), 3)


def _audit_head(commits: list[dict]) -> dict | None:
    """The last head of the audit chain these commits wrote (the kiosk's `audit_head` setting)."""
    head = None
    for commit in commits:
        if commit.get("o") in protocol.UNPUSHED_ORIGINS:
            continue
        for change in commit.get("c", ()):
            if (isinstance(change, dict) and change.get("t") == "settings" and change.get("k") == "audit_head"
                    and change.get("o") == "put" and isinstance(change.get("d"), dict)):
                head = {"n": change["d"].get("n"), "hash": change["d"].get("hash")}
    return head


def _wire(change: dict) -> dict:
    """A journal change as central reads it: a dropped table is, for central, an emptied one."""
    if change.get("o") == "drop":
        return {"t": change["t"], "o": "clear", "k": None, "d": None}
    return change


class _Retry(Exception):
    """A failure worth another attempt (network, 5xx, clock re-measured, duplicated request)."""

    def __init__(self, failure: SyncFailed):
        """Keep the failure to raise if the attempts run out."""
        super().__init__(str(failure))
        self.failure = failure


@dataclass
class _Batch:
    """One encoded push (body None: nothing more to send; `after` is the journal position then)."""

    first: int
    last: int
    count: int
    body: bytes | None
    after: list
    audit_head: dict | None = None


class _Prefetch:
    """Run a generator one item ahead in a helper thread (reading and encoding the next batch
    overlaps the current request). Leaving the `with` block stops the helper."""

    def __init__(self, generator):
        """Prepare to run `generator`."""
        self.generator = generator
        self.queue: queue.Queue = queue.Queue(maxsize=1)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._produce, name="sync-prefetch", daemon=True)

    def _offer(self, item) -> bool:
        """Hand an item over, unless the consumer has left; False when it has."""
        while not self.stopping.is_set():
            try:
                self.queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        """The helper thread: run the generator into the queue."""
        try:
            for item in self.generator:
                if not self._offer(("item", item)):
                    return
            self._offer(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, who raises it
            self._offer(("error", exc))

    def __enter__(self) -> "_Prefetch":
        """Start the helper."""
        self.thread.start()
        return self

    def __iter__(self):
        """Items in order; the generator's exception, if any, is raised here."""
        while True:
            kind, value = self.queue.get()
            if kind == "error":
                raise value
            if kind == "end":
                return
            yield value

    def __exit__(self, *exc_info) -> None:
        """Stop the helper and wait for it."""
        self.stopping.set()
        self.thread.join()
        self.generator.close()


# -- enrolment -----------------------------------------------------------------------------------

def enroll(data_dir: str | os.PathLike, central_url: str, code: str, *, centre: str | None = None,
           clock=None, session: requests.Session | None = None, timeout: float = 30) -> Credential:
    """Exchange a one-time code for this kiosk's credential, stored in DATA/sync (mode 0600)."""
    data_dir = Path(data_dir)
    clock = clock or SystemClock()
    parts = urlsplit(central_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise NotEnrolled(f"{central_url!r} is not an http(s) URL of the central server")
    device_id = device_identity(data_dir, clock)
    key = protocol.new_private_key()
    body = {"v": protocol.VERSION, "code": code.strip(), "device_id": device_id,
            "public_key": protocol.public_key_text(key), "centre": centre}
    url = central_url.rstrip("/") + protocol.API_PREFIX + "/enroll"
    try:
        response = (session or requests).post(url, data=protocol.dumps(body), timeout=timeout,
                                               headers={"Content-Type": "application/json"})
    except requests.RequestException as exc:
        raise CentralUnreachable(f"central is unreachable at {central_url}: {exc.__class__.__name__}") from None
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code != 201 or not isinstance(data, dict):
        error = (data or {}).get("error", {}) if isinstance(data, dict) else {}
        message = error.get("message") if isinstance(error, dict) else None
        if response.status_code >= 500 or not message:
            raise CentralUnreachable(f"central failed ({response.status_code}): {message or response.reason}")
        raise CentralRefused(f"enrolment refused: {message}", code=error.get("code"))
    try:
        reply = protocol.EnrolResponse.model_validate(data)
    except ValidationError as exc:
        raise CentralUnreachable(f"central's enrolment answer is not understood: {protocol.describe(exc)}") from None
    if reply.device_id != device_id:
        raise CentralRefused("central enrolled another device id than this kiosk's")
    credential = Credential(central_url=central_url.rstrip("/"), device_id=device_id, centre=reply.centre,
                            label=reply.label, key_id=reply.key_id, private_key=key,
                            enrolled_at=protocol.utc_iso(clock.now()))
    directory = sync_dir(data_dir)
    private_dir(directory)
    write_atomic(directory / CREDENTIAL_FILE, json.dumps(credential.to_json()).encode("utf-8"), mode=0o600)
    return credential


# -- status for the supervisor screen ------------------------------------------------------------

def status(data_dir: str | os.PathLike) -> dict:
    """What the supervisor screen shows: enrolment, last sync, commits pending, clock offset."""
    data_dir = Path(data_dir)
    state = read_state(data_dir)
    try:
        credential = load_credential(data_dir)
    except NotEnrolled:
        credential = None
    acked = int(state.get("acked_seq", 0))
    failed_dir = sync_dir(data_dir) / INBOX_DIR / FAILED_DIR
    try:
        inbox_failed = sum(1 for name in os.listdir(failed_dir) if name.endswith(".json"))
    except FileNotFoundError:
        inbox_failed = 0
    return {
        "enrolled": credential is not None,
        "centre": credential.centre if credential else None,
        "device_label": credential.label if credential else None,
        "central_url": credential.central_url if credential else None,
        "last_success_at": state.get("last_success_at"),
        "last_attempt_at": state.get("last_attempt_at"),
        "last_error": state.get("last_error"),
        "acked_seq": acked,
        "pending": max(journal_last_seq(data_dir / "store") - acked, 0),
        "clock_offset_s": state.get("clock_offset_s"),
        "inbox_failed": inbox_failed,
        "enrolled_at": credential.enrolled_at if credential else None,
    }


# -- command line --------------------------------------------------------------------------------

class _Progress:
    """A click progress bar on a terminal; nothing under cron or --quiet."""

    def __init__(self, enabled: bool):
        """Draw only when `enabled`."""
        self.enabled = enabled
        self.bar = None

    def start(self, total: int) -> None:
        """Begin a bar for `total` commits."""
        if self.enabled and total > 0:
            self.bar = click.progressbar(length=total, label="pushing", file=sys.stderr, show_pos=True)
            self.bar.__enter__()

    def advance(self, n: int) -> None:
        """Move the bar."""
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        """Finish the bar's line."""
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _kiosk_settings() -> tuple[Path, str | None, object]:
    """Data directory, centre code and clock of the current kiosk app (never opens the store)."""
    state = current_app.extensions.get("kiosk")
    clock = state.clock if state is not None else SystemClock()
    return Path(current_app.config["DATA_DIR"]), current_app.config.get("CENTRE"), clock


@click.command("enroll")
@click.argument("central_url")
@click.argument("code")
@with_appcontext
def enroll_command(central_url, code):
    """Enrol this kiosk with central using a one-time CODE printed by `flask --app sync.central enroll`."""
    data_dir, centre, clock = _kiosk_settings()
    host = urlsplit(central_url).hostname or ""
    if urlsplit(central_url).scheme == "http" and host not in ("localhost", "127.0.0.1", "::1"):
        click.echo("warning: plain http: requests are signed but not encrypted; use https in production", err=True)
    try:
        credential = enroll(data_dir, central_url, code, centre=centre, clock=clock)
    except SyncFailed as exc:
        click.echo(f"enrolment failed: {exc}", err=True)
        sys.exit(exc.exit_code)
    click.echo(f"enrolled as {credential.label} ({credential.device_id}) for centre {credential.centre}; "
               f"key {credential.key_id}")


@click.command("sync")
@click.option("--loop", is_flag=True, help="keep syncing, backing off while central is unreachable (no cron)")
@click.option("--interval", default=60, show_default=True, type=click.IntRange(5, 3600),
              help="seconds between rounds with --loop")
@click.option("--quiet", is_flag=True, help="print nothing unless something fails (for cron)")
@click.option("--repull", is_flag=True, help="fetch central's whole configuration again")
@with_appcontext
def sync_command(loop, interval, quiet, repull):
    """Push this kiosk's records to central and pull its configuration (one round, or --loop)."""
    data_dir, centre, clock = _kiosk_settings()
    if "LOG_FORMAT" in current_app.config:  # the kiosk's log settings (journald under the systemd timer)
        from kiosk.ops.logs import setup_unless_configured
        setup_unless_configured(current_app.config, process="sync")
    agent = Agent(data_dir, centre=centre, clock=clock)
    if repull:
        state = read_state(data_dir)
        state["pull_since"] = 0
        write_state(data_dir, state)
    if not loop:
        sys.exit(_one_round(agent, quiet))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    failures = 0
    while not stop.is_set():
        code = _one_round(agent, quiet)
        failures = failures + 1 if code not in (0, EXIT_BUSY) else 0
        stop.wait(backoff_s(failures, interval))
    sys.exit(0)


def backoff_s(failures: int, interval: float) -> float:
    """Seconds to wait: the interval after success, then 5 s doubling to 15 min with +-20 % jitter."""
    if failures == 0:
        return interval
    return min(5 * 2 ** (failures - 1), 900) * random.uniform(0.8, 1.2)


def _one_round(agent: Agent, quiet: bool) -> int:
    """Run a round, report it, return the exit code."""
    progress = _Progress(enabled=not quiet and sys.stderr.isatty())
    try:
        outcome = agent.run(progress)
    except SyncFailed as exc:
        progress.close()
        click.echo(f"sync failed: {exc}", err=True)
        return exc.exit_code
    progress.close()
    if not quiet:
        click.echo(f"pushed {outcome.pushed_commits} commits (central has up to {outcome.acked_seq}); "
                   f"pulled {outcome.pulled_changes} configuration changes")
    return 0
