"""Read-only view of a store's journal as a change feed (the sync agent's outbox).

Safe while the kiosk is writing: the journal is append-only, and only complete lines with a valid
CRC are returned. Before reading, the reader fsyncs the segment, so nothing it hands on can be lost
by a later power cut (a record central holds must never vanish from the kiosk).

A position is `[first_seq_of_segment, byte_offset]` just after the last commit returned: JSON-able,
cheap to compare with `head()`, which costs one listdir and one stat.
"""
from __future__ import annotations

import os
from pathlib import Path

from kiosk.store.journal import JOURNAL, decode_commit, list_segments

Position = list  # [segment first seq, byte offset]


def head(store_dir: str | os.PathLike) -> Position:
    """Position of the end of the journal right now."""
    segments = list_segments(Path(store_dir) / JOURNAL)
    if not segments:
        return [0, 0]
    first, path = segments[-1]
    try:
        return [first, path.stat().st_size]
    except FileNotFoundError:
        return [first, 0]


def read(store_dir: str | os.PathLike, after_seq: int, *, position: Position | None = None,
         max_commits: int = 500, max_bytes: int = 1_000_000) -> tuple[list[dict], Position]:
    """Commits with seq > after_seq, oldest first, bounded by count and bytes, and the position after them.

    `position`, when given, must be the position returned together with commit `after_seq`; it lets
    the read start there instead of scanning the segment from its start.
    """
    journal = Path(store_dir) / JOURNAL
    segments = list_segments(journal)
    out: list[dict] = []
    used = 0
    pos: Position = list(position) if position else head(store_dir)
    start_index = _segment_index(segments, after_seq + 1)
    if start_index is None:
        return out, pos
    for index in range(start_index, len(segments)):
        first, path = segments[index]
        offset = position[1] if position and position[0] == first else 0
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            size = os.fstat(fd).st_size
            if size > offset:
                os.fsync(fd)  # send only what is durable
            data = os.pread(fd, size - offset, offset)
        finally:
            os.close(fd)
        cursor = 0
        while cursor < len(data):
            end = data.find(b"\n", cursor)
            if end < 0:
                break
            commit = decode_commit(data[cursor:end + 1])
            if commit is None:
                return out, pos  # the writer is mid-line, or the line is damaged: stop here
            line_len = end + 1 - cursor
            if commit["s"] > after_seq:
                if out and (len(out) >= max_commits or used + line_len > max_bytes):
                    return out, pos
                out.append(commit)
                used += line_len
            cursor = end + 1
            pos = [first, offset + cursor]
        pos = [first, offset + cursor]
    return out, pos


def _segment_index(segments: list[tuple[int, Path]], seq: int) -> int | None:
    """Index of the segment that holds commit `seq` (or the first one after it)."""
    if not segments:
        return None
    chosen = 0
    for index, (first, _) in enumerate(segments):
        if first <= seq:
            chosen = index
        else:
            break
    return chosen


def head_seq(store_dir: str | os.PathLike) -> int:
    """The last durable commit's seq (reads the last segment; for checks and status, not hot paths)."""
    journal = Path(store_dir) / JOURNAL
    segments = list_segments(journal)
    for first, path in reversed(segments):
        data = path.read_bytes()
        last = None
        for line in data.splitlines(keepends=True):
            commit = decode_commit(line)
            if commit is None:
                break
            last = commit["s"]
        if last is not None:
            return last
        if first > 1:
            return first - 1
    return 0
