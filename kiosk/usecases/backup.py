"""Backups of a data directory while the kiosk serves, and restoring one.

A backup is a generation folder `DEST/kiosk-<centre>-<UTC time, ms>-<seq>/` holding a copy of the data
directory as it was at commit `seq` of the store, plus `BACKUP.json` (what it is, and every
file's size and SHA-256). It is taken without stopping the kiosk and without its lock:

- the snapshot is read first (replacing it is one rename, so an open file reads a whole one), then
  the archive manifest, then the journal's last complete commit S; every journal segment is copied
  up to the end of commit S, and the manifest is read again: if a day close changed it meanwhile,
  or a compaction trimmed a segment the copy needed, everything is read again. A day close writes
  the manifest before it removes live copies and marks them done after, so an unchanged manifest
  means the copy holds exactly the archive parts the commits up to S know of: a consistent prefix;
- archive files are immutable, copied once and checked against the manifest's SHA-256;
- the copy is written under a temporary name, opened like `check` (store, archive, audit chain,
  numbering), checked against its own checksums again, then renamed into place; generations
  beyond `keep` are deleted, oldest first.

Restoring (the kiosk stopped) checks every checksum, refuses a backup of another centre, of another
store, or older than the store it would replace unless forced, stages the copy inside the data
directory, then moves the current data aside into `DATA/replaced-<stamp>/` (never deleted) and the
copy in. A kill at any moment is safe: before `.restoring/READY` exists nothing was touched; after
it, the kiosk refuses to start and running the restore again finishes the switch.

Sync: the restored journal ends at S, but central may hold later commits of this kiosk (made
after the backup). So that new commits do not reuse those numbers, the restore appends a commit
`{"o": "restore", "b": S}` numbered J + 1, J being the highest commit this kiosk is known to have
made or central to have acknowledged (the replaced store's journal and sync state, the backup's,
and `--after-seq`); the sync agent fills the numbers in between with empty commits on the wire.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
from pathlib import Path

from kiosk.clock import iso
from kiosk.store import feed
from kiosk.store.archive import ARCHIVE_DIR, MANIFEST as ARCHIVE_MANIFEST, ArchiveError
from kiosk.store.format import CURRENT, RESTORE_READY, RESTORING, check_supported, data_format, read_format
from kiosk.store.journal import (JOURNAL, LOCK, RESTORE, SNAPSHOT, StoreError, _format_hlc, _next_hlc,
                                 _parse_hlc, decode_commit, encode_commit, list_segments, segment_name)
from sync.files import fsync_dir, private_dir, write_durable

log = logging.getLogger(__name__)

BACKUP_FILE = "BACKUP.json"
GENERATION = re.compile(r"^kiosk-(?P<centre>[A-Za-z0-9_-]+)-(?P<stamp>\d{8}T\d{9}Z)-(?P<seq>\d+)$")
STAGING_PREFIX = ".kiosk-backup-"
REPLACED_PREFIX = "replaced-"
# never copied: locks, half-written files, restores' leftovers, a staging folder
_SKIP_NAMES = {LOCK, "agent.lock", RESTORING}


class BackupError(StoreError):
    """A backup or restore cannot be done; the message says why and what to do."""


# -- small file helpers ----------------------------------------------------------------------------

def _sha256_file(path: Path) -> str:
    """SHA-256 of a file, read a megabyte at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _mkdirs(path: Path) -> None:
    """Create a folder and any missing parents, owner-only."""
    private_dir(path)


def _stamp(now: dt.datetime) -> str:
    """A UTC time to the millisecond as 20261205T101500123Z (sorts as it reads)."""
    utc = now.astimezone(dt.timezone.utc)
    return utc.strftime("%Y%m%dT%H%M%S") + f"{utc.microsecond // 1000:03d}Z"


def generations(dest: Path) -> list[Path]:
    """Complete backup generations in DEST, oldest first."""
    found = [p for p in dest.iterdir() if p.is_dir() and GENERATION.match(p.name) and (p / BACKUP_FILE).is_file()]
    return sorted(found, key=lambda p: (GENERATION.match(p.name)["stamp"], int(GENERATION.match(p.name)["seq"])))


# -- taking a consistent copy ------------------------------------------------------------------------

def _read_or_none(path: Path) -> bytes | None:
    """A file's bytes, or None when it does not exist."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _snapshot_seq(data: bytes | None) -> int:
    """The commit a snapshot covers, read from its first bytes (snapshots are large)."""
    if data is None:
        return 0
    found = re.search(rb'"seq":(\d+)', data[:512])
    if not found:
        raise BackupError("the store's snapshot does not say which commit it covers; run `flask --app kiosk check`")
    return int(found.group(1))


def _copy_journal(store_dir: Path, covered: int, upto: int, put) -> bool:
    """Copy every journal segment cut after commit `upto` (later segments left out) with `put`, one
    segment in memory at a time; False when the copy is unusable (a segment vanished meanwhile, or
    the commits after the snapshot's `covered` are not all there: a compaction trimmed them)."""
    expected = covered + 1
    for first, path in list_segments(store_dir / JOURNAL):
        if first > upto + 1:
            break
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return False
        keep = 0
        for line in data.splitlines(keepends=True):
            commit = decode_commit(line)
            if commit is None or commit["s"] > upto:
                break
            seq = commit["s"]
            if seq >= expected:
                if seq != expected and not (commit.get("o") == RESTORE and commit.get("b") == expected - 1):
                    return False
                expected = seq + 1
            keep += len(line)
        put(f"store/{JOURNAL}/{path.name}", data[:keep])
    return expected > upto


def _consistent_copy(data_dir: Path, attempts: int, put, restart) -> dict:
    """Snapshot, archive manifest and journal of the same moment (see the module's docstring);
    the journal is written with `put` as it is read (`restart` forgets an attempt's copy)."""
    store_dir = data_dir / "store"
    manifest_path = data_dir / ARCHIVE_DIR / ARCHIVE_MANIFEST
    for attempt in range(1, attempts + 1):
        restart()
        snapshot = _read_or_none(store_dir / SNAPSHOT)
        covered = _snapshot_seq(snapshot)
        manifest = _read_or_none(manifest_path)
        upto = feed.head_seq(store_dir)
        if not _copy_journal(store_dir, covered, upto, put):
            continue
        if _read_or_none(manifest_path) != manifest:
            continue  # a day close moved records meanwhile
        return {"snapshot": snapshot, "snapshot_seq": covered, "manifest": manifest, "seq": upto,
                "attempts": attempt}
    raise BackupError(f"the store kept changing under the copy ({attempts} attempts: a day close or compaction "
                      "each time); try again in a minute")


def _other_files(data_dir: Path, dest: Path) -> list[Path]:
    """Everything else of the data directory worth keeping (keys, device id, sync credential and
    state, trust lists, voices, print queue), relative paths."""
    out = []
    for root, dirs, files in os.walk(data_dir):
        rel_root = Path(root).relative_to(data_dir)
        if rel_root == Path("."):
            dirs[:] = [d for d in dirs if d not in ("store", ARCHIVE_DIR, RESTORING)
                       and not d.startswith(REPLACED_PREFIX)]
        dirs[:] = [d for d in dirs if Path(root, d).resolve() != dest.resolve()]
        for name in files:
            if name in _SKIP_NAMES or name.endswith(".tmp"):
                continue
            if Path(root, name).is_file() and not Path(root, name).is_symlink():
                out.append(rel_root / name)
    return sorted(out)


def backup(data_dir: str | os.PathLike, dest: str | os.PathLike, *, centre: str, clock, config: dict,
           keep: int = 7, attempts: int = 20) -> dict:
    """Copy the data directory into a new generation under DEST, verify it, prune to `keep`.
    Returns {"path", "seq", "files", "bytes", "pruned", "checks"}."""
    data_dir, dest = Path(data_dir).resolve(), Path(dest)
    if not dest.exists():
        raise BackupError(f"{dest} does not exist: create it, or mount the backup disk there first (a missing "
                          "mount point would otherwise fill the kiosk's own disk)")
    if not dest.is_dir():
        raise BackupError(f"{dest} is not a folder")
    dest = dest.resolve()
    if not os.access(dest, os.W_OK | os.X_OK):
        raise BackupError(f"{dest} is not writable by this user")
    if dest == data_dir or data_dir in dest.parents:
        raise BackupError(f"{dest} is inside the data directory {data_dir}: back up to another disk")
    if keep < 1:
        raise BackupError("--keep must be at least 1")
    check_supported(data_dir)
    if not (data_dir / "store").is_dir():
        raise BackupError(f"{data_dir} holds no store: nothing to back up")
    if data_format(data_dir) != CURRENT:
        raise BackupError(f"{data_dir} is still in store format {data_format(data_dir)}: start the kiosk (or run "
                          "`flask --app kiosk check`) once so that it is upgraded, then back it up")
    for stale in dest.glob(STAGING_PREFIX + "*"):
        shutil.rmtree(stale, ignore_errors=True)  # left by a backup that was killed

    now = clock.now()
    staging = dest / f"{STAGING_PREFIX}{_stamp(now)}-{os.getpid()}"
    _mkdirs(staging)
    try:
        files: dict[str, dict] = {}

        def put(rel: str, data: bytes, mode: int = 0o600) -> None:
            target = staging / rel
            _mkdirs(target.parent)
            write_durable(target, data, mode=mode)
            files[rel] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}

        def restart_journal() -> None:
            """Forget what an earlier attempt copied of the journal."""
            for rel in [r for r in files if r.startswith(f"store/{JOURNAL}/")]:
                (staging / rel).unlink()
                del files[rel]
            _mkdirs(staging / "store" / JOURNAL)

        copy = _consistent_copy(data_dir, attempts, put, restart_journal)
        seq = copy["seq"]
        if copy["snapshot"] is not None:
            put(f"store/{SNAPSHOT}", copy["snapshot"])
        if copy["manifest"] is not None:
            parts = json.loads(copy["manifest"])["parts"]
            for part in parts:
                source = data_dir / ARCHIVE_DIR / part["file"]
                try:
                    data = source.read_bytes()
                except FileNotFoundError:
                    raise BackupError(f"archive file {source} is missing; run `flask --app kiosk check`") from None
                if hashlib.sha256(data).hexdigest() != part["sha256"]:
                    raise BackupError(f"archive file {source} does not match its checksum; run "
                                      "`flask --app kiosk check` (restore that file from an older backup)")
                put(f"{ARCHIVE_DIR}/{part['file']}", data, 0o400)
            put(f"{ARCHIVE_DIR}/{ARCHIVE_MANIFEST}", copy["manifest"])
        for rel in _other_files(data_dir, dest):
            data = (data_dir / rel).read_bytes()
            if rel == Path("sync/state.json"):
                data = _state_for_copy(data, seq)
            put(str(rel), data)
        fmt = read_format(data_dir) or {}
        info = {"backup": 1, "centre": centre, "seq": seq, "snapshot_seq": copy["snapshot_seq"],
                "store_format": fmt.get("format", 1), "store_id": fmt.get("store_id"),
                "device_id": _device_id(data_dir), "created_at": iso(now), "files": files}
        checks = verify_generation(staging, info, config)
        info["checks_failed"] = [message for ok, message in checks if not ok]
        write_durable(staging / BACKUP_FILE, (json.dumps(info, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
        for folder in sorted({(staging / rel).parent for rel in files} | {staging}, key=lambda p: -len(p.parts)):
            fsync_dir(folder)
        final = dest / f"kiosk-{_safe(centre)}-{_stamp(now)}-{seq}"
        if final.exists():
            raise BackupError(f"{final} already exists (two backups in the same millisecond): try again")
        os.rename(staging, final)
        fsync_dir(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    pruned = []
    for old in generations(dest)[:-keep]:
        shutil.rmtree(old)
        pruned.append(old.name)
    if pruned:
        fsync_dir(dest)
    return {"path": final, "seq": seq, "attempts": copy["attempts"], "files": len(files), "bytes": sum(f["bytes"] for f in files.values()),
            "pruned": pruned, "checks": checks}


def _safe(centre: str) -> str:
    """The centre code as it may appear in a folder name."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", centre) or "centre"


def _device_id(data_dir: Path) -> str | None:
    """DATA/device.json's device id, or None."""
    try:
        return json.loads((data_dir / "device.json").read_text(encoding="utf-8"))["device_id"]
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def _state_for_copy(data: bytes, seq: int) -> bytes:
    """The sync agent's state as the copy may claim it: nothing acknowledged beyond the copied
    journal (the agent may have synced on meanwhile), and no read position (the copy's segments end
    elsewhere). Sending a commit central has again changes nothing there."""
    try:
        state = json.loads(data)
    except ValueError:
        return data
    if isinstance(state, dict):
        state["acked_seq"] = min(int(state.get("acked_seq", 0) or 0), seq)
        state.pop("position", None)
    return json.dumps(state).encode("utf-8")


def verify_generation(path: Path, info: dict, config: dict) -> list[tuple[bool, str]]:
    """Open a copy as `check` does and compare every file with its checksum before and after; raise
    BackupError when the copy is unusable, else return `check`'s findings (ok, message). A finding
    that fails is kept with the backup and reported (the data directory itself has the same problem:
    a backup of a store with a fault is still worth having)."""
    problems = _checksum_problems(path, info)
    if problems:
        raise BackupError("the copy does not match its checksums: " + "; ".join(problems[:5]))
    try:
        messages = run_checks(path, config)
    except StoreError as exc:
        raise BackupError(f"the copy does not open as a store ({exc}); nothing was kept") from None
    (path / "store" / LOCK).unlink(missing_ok=True)
    problems = _checksum_problems(path, info)
    if problems:
        raise BackupError("the copy changed while it was checked: " + "; ".join(problems[:5]))
    return messages


def _checksum_problems(path: Path, info: dict) -> list[str]:
    """Files missing, changed or unexpected, compared with the manifest."""
    problems = []
    for rel, meta in info["files"].items():
        target = path / rel
        if not target.is_file():
            problems.append(f"{rel} is missing")
        elif target.stat().st_size != meta["bytes"] or _sha256_file(target) != meta["sha256"]:
            problems.append(f"{rel} does not match its checksum")
    return problems


def run_checks(data_dir: Path, config: dict) -> list[tuple[bool, str]]:
    """`check`'s store, archive, audit and numbering checks on a data directory (opened, nothing written)."""
    from kiosk import services
    from kiosk.events import Broker
    from kiosk.store import Store
    from kiosk.clock import SystemClock
    store = Store(data_dir, clock=SystemClock())
    try:
        centre = services.Centre(store=store, clock=store.clock, events=Broker(),
                                 config={**config, "DATA_DIR": str(data_dir)})
        results = [(True, f"store opened at commit {store.seq}")]
        return results + archive_checks(centre) + services.check(centre)
    finally:
        store.close()


def archive_checks(centre) -> list[tuple[bool, str]]:
    """Every archive file against its checksum and its own structure; an interrupted day close."""
    archive = centre.history.archive
    try:
        parts = archive.parts()
    except ArchiveError as exc:
        return [(False, str(exc))]
    results = []
    for part in parts:
        results += [(False, f"archive: {problem}") for problem in archive.verify(part, centre.tz)]
    size = sum(p.bytes for p in parts)
    days = len({p.day for p in parts})
    if not any(not ok for ok, _ in results):
        results.append((True, f"archive: {days} closed days in {len(parts)} files ({size / 1e6:.1f} MB), "
                              "every checksum matches"))
    for part in archive.pending():
        results.append((True, f"archive: {part.file} was being moved when a day close stopped; the next one "
                              "finishes it (readers see each record once meanwhile)"))
    for name in archive.leftovers():
        results.append((True, f"archive: {name} is left from an interrupted day close; the next one deletes it"))
    return results


# -- restoring ---------------------------------------------------------------------------------------

def find_generation(src: str | os.PathLike) -> Path:
    """SRC itself when it is a generation, else the newest generation in it."""
    src = Path(src)
    if not src.exists():
        raise BackupError(f"{src} does not exist (is the backup disk mounted?)")
    if (src / BACKUP_FILE).is_file():
        return src
    if src.is_dir():
        found = generations(src)
        if found:
            return found[-1]
    raise BackupError(f"{src} is neither a backup (a folder with {BACKUP_FILE}) nor a folder of backups")


def read_backup(path: Path) -> dict:
    """A generation's BACKUP.json, after checking every file against it."""
    try:
        info = json.loads((path / BACKUP_FILE).read_text(encoding="utf-8"))
        files, seq = info["files"], int(info["seq"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"{path / BACKUP_FILE} is unreadable ({exc}): not a usable backup") from None
    if not isinstance(files, dict) or seq < 0:
        raise BackupError(f"{path / BACKUP_FILE} is malformed: not a usable backup")
    if int(info.get("store_format", 1)) > CURRENT:
        raise BackupError(f"{path} was made by a newer release (store format {info['store_format']}; this one "
                          f"reads up to {CURRENT}): restore it with that release")
    problems = _checksum_problems(path, info)
    if problems:
        raise BackupError(f"{path} is damaged: " + "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else "")
                          + "; use another generation")
    return info


def _hold_lock(store_dir: Path) -> int | None:
    """Take the store's writer lock for the restore (None when there is no store yet)."""
    if not store_dir.is_dir():
        return None
    fd = os.open(store_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise BackupError(f"the kiosk (process {holder}) has the store open: stop it before restoring") from None
    return fd


def _acked(data_dir: Path) -> int:
    """The sync agent's acknowledged commit in a data directory (0 when never synced)."""
    try:
        return int(json.loads((data_dir / "sync" / "state.json").read_text(encoding="utf-8")).get("acked_seq", 0))
    except (FileNotFoundError, ValueError, TypeError, AttributeError):
        return 0


def _last_hlc(journal: Path, snapshot: Path) -> tuple[int, int]:
    """The highest clock of the copied store (its snapshot and the last journal commit)."""
    hlc = (0, 0)
    try:
        head = snapshot.read_bytes()[:512]
        found = re.search(rb'"hlc":\[(\d+),(\d+)\]', head)
        if found:
            hlc = (int(found.group(1)), int(found.group(2)))
    except FileNotFoundError:
        pass
    for _, path in reversed(list_segments(journal)):
        lines = path.read_bytes().splitlines(keepends=True)
        if lines:
            commit = decode_commit(lines[-1])
            if commit:
                hlc = max(hlc, _parse_hlc(commit.get("h"), hlc))
            break
    return hlc


def restore(src: str | os.PathLike, data_dir: str | os.PathLike, *, centre: str, clock, config: dict,
            force: bool = False, after_seq: int = 0) -> dict:
    """Put a backup in place of the data directory (see the module docstring); returns
    {"from", "seq", "next_seq", "replaced", "checks", "resumed"}."""
    data_dir = Path(data_dir).resolve()
    staging = data_dir / RESTORING
    if (staging / RESTORE_READY).exists():
        replaced = _switch(data_dir)
        return {"from": None, "seq": None, "next_seq": None, "replaced": replaced, "resumed": True,
                "checks": run_checks(data_dir, config)}
    generation = find_generation(src).resolve()
    if generation == data_dir or data_dir in generation.parents:
        raise BackupError(f"{generation} is inside the data directory: copy it elsewhere first")
    info = read_backup(generation)
    if info.get("centre") != centre and not force:
        raise BackupError(f"{generation} is a backup of centre {info.get('centre')}, and this kiosk is centre "
                          f"{centre}; use --force to restore it anyway")
    _mkdirs(data_dir)
    lock_fd = _hold_lock(data_dir / "store")
    try:
        here = read_format(data_dir) or {}
        same_device = _device_id(data_dir) in (None, info.get("device_id"))
        head = feed.head_seq(data_dir / "store") if (data_dir / "store").is_dir() else 0
        if head and not force:
            if here.get("store_id") and info.get("store_id") and here["store_id"] != info["store_id"]:
                raise BackupError(f"{generation} is a backup of another store ({info['store_id']}, this one is "
                                  f"{here['store_id']}); use --force to replace this store with it")
            if head > info["seq"]:
                raise BackupError(f"the store here is newer than the backup: it has commits up to {head}, the "
                                  f"backup up to {info['seq']} (made {info.get('created_at')}); restoring would "
                                  "go back in time. Use --force to restore anyway (the current data is kept aside)")
        known = [info["seq"], _acked(generation), after_seq]
        if same_device:
            known += [head, _acked(data_dir)]
        jump_to = max(known)
        if staging.exists():
            shutil.rmtree(staging)  # a restore that stopped before its copy was complete
        _mkdirs(staging)
        for rel in info["files"]:
            target = staging / rel
            _mkdirs(target.parent)
            shutil.copyfile(generation / rel, target)
            os.chmod(target, 0o400 if rel.startswith(ARCHIVE_DIR + "/") and rel != f"{ARCHIVE_DIR}/{ARCHIVE_MANIFEST}"
                     else 0o600)
            with open(target, "rb") as fh:
                os.fsync(fh.fileno())
        _mkdirs(staging / "store" / JOURNAL)
        if jump_to > info["seq"]:
            hlc = _next_hlc(_last_hlc(staging / "store" / JOURNAL, staging / "store" / SNAPSHOT),
                            int(clock.now().timestamp() * 1000))
            marker = {"s": jump_to + 1, "at": iso(clock.now()), "h": _format_hlc(hlc), "c": [], "o": RESTORE,
                      "b": info["seq"]}
            write_durable(staging / "store" / JOURNAL / segment_name(jump_to + 1), encode_commit(marker))
        state = staging / "sync" / "state.json"
        if state.exists():
            write_durable(state, _state_for_copy(state.read_bytes(), info["seq"]))
        for folder in sorted({p.parent for p in staging.rglob("*")} | {staging}, key=lambda p: -len(p.parts)):
            fsync_dir(folder)
        replaced_name = f"{REPLACED_PREFIX}{_stamp(clock.now())}"
        # READY appears whole or not at all (renamed into place): from then on the switch is resumable
        write_durable(staging / (RESTORE_READY + ".tmp"), json.dumps({"replaced": replaced_name, "phase": "aside"}).encode())
        os.replace(staging / (RESTORE_READY + ".tmp"), staging / RESTORE_READY)
        fsync_dir(staging)
        replaced = _switch(data_dir)
    finally:
        if lock_fd is not None:
            fcntl.flock(lock_fd, fcntl.LOCK_UN)
            os.close(lock_fd)
    return {"from": generation, "seq": info["seq"], "next_seq": jump_to + 2 if jump_to > info["seq"] else info["seq"] + 1,
            "replaced": replaced, "resumed": False, "checks": run_checks(data_dir, config)}


def _switch(data_dir: Path) -> Path:
    """Move the current data aside and the staged copy in; safe to run again after a kill."""
    staging = data_dir / RESTORING
    ready = staging / RESTORE_READY
    plan = json.loads(ready.read_text(encoding="utf-8"))
    replaced = data_dir / plan["replaced"]
    if plan["phase"] == "aside":
        _mkdirs(replaced)
        for entry in sorted(os.listdir(data_dir)):
            if entry == RESTORING or entry.startswith(REPLACED_PREFIX):
                continue
            os.rename(data_dir / entry, replaced / entry)
        fsync_dir(replaced)
        fsync_dir(data_dir)
        plan["phase"] = "in"
        write_durable(ready.with_name(RESTORE_READY + ".tmp"), json.dumps(plan).encode())
        os.replace(ready.with_name(RESTORE_READY + ".tmp"), ready)
        fsync_dir(staging)
    for entry in sorted(os.listdir(staging)):
        if entry in (RESTORE_READY, RESTORE_READY + ".tmp"):
            continue
        os.rename(staging / entry, data_dir / entry)
    fsync_dir(data_dir)
    ready.unlink()
    fsync_dir(staging)
    os.rmdir(staging)
    fsync_dir(data_dir)
    return replaced
