"""The spool on disk: documents survive the JSON round trip, appends are ordered and durable, a torn
tail is repaired, segments rotate and finished ones are deleted, the done log rotates."""

from __future__ import annotations

import datetime as dt

import pytest

from hardware import Document, Line, QrCode, Rule, Spacer, ticket_document
from hardware.spool import Spool, SpoolBusy, decode_record, document_from_json, document_to_json, encode_record
from tests.hardware.samples import SLIPS

AT = dt.datetime(2026, 11, 22, 6, 0, tzinfo=dt.timezone.utc)


def every_block() -> Document:
    """A document with each kind of block and every option set away from its default."""
    return Document((Line("وصل", "ar", "large", bold=True, align="center", direction="ltr"), Rule(3), Spacer(12),
                     QrCode("HTTPS://V.EXAMPLE/R#ABC", level="Q", module_dots=5), Line("ok")), title="receipt R-1")


def test_documents_round_trip_through_json():
    """What the worker reads back is equal to what the kiosk spooled, block for block."""
    for document in (every_block(), ticket_document(SLIPS["ckb"])):
        assert document_from_json(document_to_json(document)) == document


def test_a_ticket_is_spooled_as_its_slip_and_laid_out_by_the_reader():
    """The request writes the slip's strings; the worker gets the same document the slip lays out to."""
    line = encode_record(7, "job7", SLIPS["ar"], AT)
    assert b'"slip":' in line and b'"blocks"' not in line
    record = decode_record(line)
    assert (record.seq, record.job_id, record.error) == (7, "job7", None)
    assert record.document == ticket_document(SLIPS["ar"]) and record.submitted_at == AT


def test_appended_jobs_read_back_in_order(tmp_path):
    """Jobs come back in sequence order with their ids, documents and submission times."""
    spool = Spool(tmp_path / "spool")
    assert spool.open_writer() == 0
    for seq, lang in enumerate(("ar", "ckb", "en"), start=1):
        spool.append(seq, f"job{seq}", ticket_document(SLIPS[lang]), AT)
    reader = spool.reader(after=0)
    records = reader.read()
    reader.close()
    assert [(r.seq, r.job_id, r.error) for r in records] == [(1, "job1", None), (2, "job2", None), (3, "job3", None)]
    assert records[1].document == ticket_document(SLIPS["ckb"]) and records[1].submitted_at == AT
    assert [r.job_id for r in spool.records(after=1)] == ["job2", "job3"]
    spool.close_writer()


def test_one_writer_at_a_time(tmp_path):
    """A second writer on the same spool is refused with a clear error until the first lets go."""
    first, second = Spool(tmp_path / "spool"), Spool(tmp_path / "spool")
    first.open_writer()
    with pytest.raises(SpoolBusy, match="in use by another kiosk process"):
        second.open_writer()
    first.close_writer()
    assert second.open_writer() == 0
    second.close_writer()


def test_a_torn_tail_is_dropped_and_numbering_continues(tmp_path):
    """A writer killed mid-line never acknowledged that job: the next writer cuts it off."""
    spool = Spool(tmp_path / "spool")
    spool.open_writer()
    spool.append(1, "job1", every_block(), AT)
    spool.append(2, "job2", every_block(), AT)
    spool.close_writer()
    (_, path), = spool.segments()
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"seq":3,"job":"job3","form')
    assert spool.open_writer() == 2
    assert path.read_bytes() == whole
    spool.append(3, "job3", every_block(), AT)
    spool.close_writer()
    assert [r.seq for r in spool.records(after=0)] == [1, 2, 3]


def test_reader_waits_for_a_line_being_written(tmp_path):
    """A line without its newline yet is left for the next read, never parsed half-way."""
    spool = Spool(tmp_path / "spool")
    spool.open_writer()
    spool.append(1, "job1", every_block(), AT)
    reader = spool.reader(after=0)
    assert [r.seq for r in reader.read()] == [1]
    (_, path), = spool.segments()
    line = path.read_bytes()
    with open(path, "ab") as fh:
        fh.write(line.replace(b'"seq":1,"job":"job1"', b'"seq":2,"job":"job2"')[:-40])
    assert reader.read() == []
    with open(path, "ab") as fh:
        fh.write(line.replace(b'"seq":1,"job":"job1"', b'"seq":2,"job":"job2"')[-40:])
    assert [r.seq for r in reader.read()] == [2]
    reader.close()
    spool.close_writer()


def test_segments_rotate_and_finished_ones_are_deleted(tmp_path):
    """Small segments: the reader follows them in order; only fully finished, older ones go."""
    spool = Spool(tmp_path / "spool", segment_bytes=2000)
    spool.open_writer()
    reader = spool.reader(after=0)
    seen = []
    for seq in range(1, 13):
        spool.append(seq, f"job{seq}", ticket_document(SLIPS["en"]), AT)
        if seq % 5 == 0:
            seen += [r.seq for r in reader.read()]
    seen += [r.seq for r in reader.read()]
    reader.close()
    assert seen == list(range(1, 13))
    firsts = [first for first, _ in spool.segments()]
    assert len(firsts) > 2 and firsts[0] == 1
    spool.lock_worker()
    spool.mark_done(firsts[2] - 1)
    spool.prune(firsts[2] - 1)
    assert [first for first, _ in spool.segments()] == firsts[2:]
    spool.mark_done(12)
    spool.prune(12)
    assert [first for first, _ in spool.segments()] == firsts[-1:], "the segment being written stays"
    assert spool.finished_through() == 12
    spool.close_worker()
    spool.close_writer()
    assert spool.open_writer() == 12, "numbering continues after everything was finished"
    spool.close_writer()


def test_done_log_rotates_and_keeps_the_last_number(tmp_path, monkeypatch):
    """The done log is cut back to its last line once it grows past its limit."""
    import hardware.spool as spool_module

    monkeypatch.setattr(spool_module, "DONE_ROTATE_BYTES", 64)
    spool = Spool(tmp_path / "spool")
    spool.lock_worker()
    for seq in range(1, 40):
        spool.mark_done(seq)
        assert spool.finished_through() == seq
    assert (tmp_path / "spool" / "done.log").stat().st_size < 64 + 8
    spool.close_worker()


def test_unreadable_lines(tmp_path):
    """A line that names its job but not a valid document comes back with an error; garbage is skipped."""
    bad = b'{"seq":4,"job":"job4","format":1,"submitted_at":null,"document":{"title":"t","blocks":[{"type":"x"}]}}'
    record = decode_record(bad)
    assert (record.seq, record.job_id, record.document) == (4, "job4", None) and "unknown" in record.error
    with pytest.raises(ValueError):
        decode_record(b'{"nothing": 1}')
