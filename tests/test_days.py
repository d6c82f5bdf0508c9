"""Day close through the use cases: earlier days' finished records leave the live store for the
archive, what is still open stays, left-over tickets are ended, a cut-off close is finished, and
every reader (tickets, cases, receipt verification, the monthly report, check) sees the same
records as before."""
import os

from kiosk import services
from kiosk.usecases.days import close_days

DAY = "2026-11-22"  # the test clock's day (06:00 UTC is 09:00 in Baghdad)


def served(centre, service="A", counter="1") -> dict:
    """A ticket issued, called, started and finished at `counter`."""
    ticket = services.issue_ticket(centre, service=service)
    services.call_ticket(centre, ticket["id"], counter=counter, by="demo")
    services.act(centre, ticket["id"], "start", by="demo")
    return services.act(centre, ticket["id"], "finish", by="demo")


def live(centre, table: str) -> set[str]:
    return set(centre.store.keys(table))


def test_close_moves_an_earlier_days_finished_records_and_keeps_what_is_open(centre, clock):
    done = [served(centre) for _ in range(3)]
    serving = services.issue_ticket(centre, service="B")
    services.call_ticket(centre, serving["id"], counter="2", by="demo")
    services.act(centre, serving["id"], "start", by="demo")
    waiting = services.issue_ticket(centre, service="C")
    audit_before = services.verify_audit(centre)
    assert close_days(centre)["closed"] == [], "nothing before today yet"
    clock.advance(days=1)
    today = services.issue_ticket(centre, service="A")
    assert today["number"] == "A-001", "numbers start again each day"

    result = close_days(centre)
    assert [p.day for p in result["closed"]] == [DAY] and result["ended"] == 1
    part = result["closed"][0]
    assert part.counts["tickets"] == 4 and part.counts["numbering"] == 3 and part.state == "done"
    assert live(centre, "tickets") == {serving["id"], today["id"]}, "being served, and today's"
    assert all(n["day"] != DAY for n in centre.store.all("numbering"))
    assert all(e["at"] >= "2026-11-22T21:00" for e in centre.store.all("audit")), "only today's entries stay"
    ended = services.get_ticket(centre, waiting["id"])
    assert ended["state"] == "cancelled" and ended["events"][-1]["reason"] == "day_closed"
    assert ended["events"][-1]["by"] == "system"
    assert services.get_ticket(centre, done[0]["id"])["state"] == "done", "read through the archive"
    assert centre.tickets.count_waiting("C") == 0
    ok, message = services.verify_audit(centre)
    assert ok and int(message.split()[0]) == int(audit_before[1].split()[0]) + 1, "the cancel is audited"
    assert all(ok for ok, _ in services.check(centre)), services.check(centre)

    assert close_days(centre)["closed"] == [], "closing again changes nothing"
    services.act(centre, serving["id"], "finish", by="demo")
    clock.advance(days=1)
    later = close_days(centre)
    assert [(p.day, p.part) for p in later["closed"]] == [(DAY, 2), ("2026-11-23", 1)]
    assert later["closed"][0].counts["tickets"] == 1, "the ticket finished late joins its day's archive"
    assert live(centre, "tickets") == set()
    assert sorted(t["id"] for t in centre.history.records("tickets", [DAY])) == sorted(
        [t["id"] for t in done] + [serving["id"], waiting["id"]])
    assert all(ok for ok, _ in services.check(centre))


def test_check_finds_numbering_and_chain_problems_in_archived_days(centre, clock):
    served(centre)
    clock.advance(days=1)
    close_days(centre)
    assert all(ok for ok, _ in services.check(centre))
    # a ticket of the closed day that duplicates an archived number (restored from a bad backup)
    archived = next(iter(centre.history.records("tickets", [DAY])))
    centre.store.put("tickets", {**archived, "id": "01JDUPLICATE0000000000000A"})
    results = dict((message.split(",")[0], ok) for ok, message in services.check(centre))
    assert results["2 tickets"] is False


def test_a_cut_off_close_is_finished_and_each_record_read_once_meanwhile(centre, clock):
    done = [served(centre) for _ in range(3)]
    clock.advance(days=1)
    archive = centre.history.archive
    # what a kill after step 2 leaves: the part named "written", the live copies still there
    records = {"tickets": centre.store.all("tickets"), "numbering": centre.store.all("numbering")}
    [part] = archive.write_parts({DAY: records}, seq=centre.store.seq, closed_at="2026-11-23T06:00:00.000Z")
    # and a kill during step 1 of another: a file the manifest does not name
    (archive.directory / "2026-11-21.1.jsonl.gz").write_bytes(b"half a file")
    assert sorted(t["id"] for t in centre.history.records("tickets", [DAY])) == sorted(t["id"] for t in done)
    result = close_days(centre)
    assert [p.file for p in result["resumed"]] == [part.file]
    assert [(p.day, p.part) for p in result["closed"]] == [(DAY, 2)], "the rest of the day (audit entries)"
    assert "tickets" not in result["closed"][0].counts, "no ticket archived twice"
    assert live(centre, "tickets") == set() and archive.pending() == [] and archive.leftovers() == []
    assert sorted(t["id"] for t in centre.history.records("tickets", [DAY])) == sorted(t["id"] for t in done)
    assert all(ok for ok, _ in services.check(centre))


def test_prune_waits_for_retention_and_central(centre, clock, app):
    served(centre)
    clock.advance(days=1)
    close_days(centre)
    app.config["ARCHIVE_RETENTION_DAYS"] = 2
    clock.advance(days=3)
    assert close_days(centre)["pruned"] == [], "central has not acknowledged it"
    sync_dir = centre.store.data_dir / "sync"
    sync_dir.mkdir(mode=0o700)
    (sync_dir / "state.json").write_text(f'{{"acked_seq": {centre.store.seq}}}', encoding="utf-8")
    pruned = close_days(centre)["pruned"]
    assert [p.day for p in pruned] == [DAY] and not any(p.day == DAY for p in centre.history.archive.parts())
    assert not os.path.exists(centre.history.archive.directory / pruned[0].file)
