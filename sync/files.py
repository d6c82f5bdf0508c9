"""Owner-only files, shared by the centre app and central: a check that lists files and
directories other users may read or enter, and the repair (`flask --app kiosk check --fix`,
`flask --app sync.central check --fix`).

The data directory holds staff PIN hashes, the centre's keys and citizens' requests: an argon2
hash of a 4-digit PIN falls to an offline search in about an hour and a half on one core, so
nothing in it may be readable by another local user. Directories should be 0700, files 0600
(or stricter); a symbolic link is reported, never followed or changed.

Also the durable file writes both ends use (an atomic replace, a directory fsync, a private
directory), so that central's tools need nothing of the kiosk's store.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

GROUP_OTHER = 0o077


def fsync_dir(path: Path) -> None:
    """Make a rename or file creation inside `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def private_dir(path: Path) -> None:
    """Create a directory and any missing parents as 0700 (owner only); an existing one is left as
    it is (`flask --app kiosk check` reports one that other users may enter)."""
    path = Path(path)
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            pass


def write_durable(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Write `data` to `path` (created or truncated) and fsync it; the caller makes the name durable."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace `path` with `data` so that a crash leaves either the old or the new file, never half
    (owner-only unless `mode` says otherwise: the data directory holds PIN hashes and keys)."""
    tmp = path.with_name(path.name + ".tmp")
    write_durable(tmp, data, mode=mode)
    os.replace(tmp, path)
    fsync_dir(path.parent)



@dataclass(frozen=True)
class Loose:
    """One path whose mode lets other users in (or that is not what it should be)."""

    path: Path
    mode: int
    problem: str          # "mode", "owner" or "symlink"

    def describe(self) -> str:
        """One line for the operator."""
        if self.problem == "symlink":
            return f"{self.path} is a symbolic link (not followed; check where it points)"
        if self.problem == "owner":
            return f"{self.path} belongs to another user (uid {self.mode}); chown it to the service user"
        return f"{self.path} has mode {stat.S_IMODE(self.mode):04o}: other users may read it"


def loose_modes(root: Path, *, within: bool = True) -> list[Loose]:
    """Paths under (and including) `root` that other users may read or enter, by path."""
    root = Path(root)
    if not os.path.lexists(root):
        return []
    out: list[Loose] = []
    uid = os.geteuid()
    paths = [root]
    if within and root.is_dir() and not root.is_symlink():
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            paths.extend(Path(dirpath) / name for name in sorted(dirnames) + sorted(filenames))
    for path in paths:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            out.append(Loose(path, info.st_mode, "symlink"))
        elif info.st_uid != uid and uid != 0:
            out.append(Loose(path, info.st_uid, "owner"))
        elif info.st_mode & GROUP_OTHER:
            out.append(Loose(path, info.st_mode, "mode"))
    return sorted(out, key=lambda x: str(x.path))


def tighten(found: list[Loose]) -> list[Loose]:
    """Remove group and other permissions from each reported path; returns what it could not fix
    (symbolic links and other users' files are left to the operator)."""
    left = []
    for item in found:
        if item.problem != "mode":
            left.append(item)
            continue
        info = os.lstat(item.path)  # Linux cannot chmod a link itself: never chmod through one
        if stat.S_ISLNK(info.st_mode):
            left.append(Loose(item.path, info.st_mode, "symlink"))
            continue
        os.chmod(item.path, stat.S_IMODE(info.st_mode) & ~GROUP_OTHER)
    return left

