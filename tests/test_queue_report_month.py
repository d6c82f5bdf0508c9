"""The queue report over a month built by `flask --app kiosk simulate` (closed, archived days)
equals an independent count read straight from the archive files, transferred and not-present
tickets included."""
import datetime as dt
import gzip
import json

from kiosk.store.archive import Archive
from kiosk.usecases import insight
from tests.test_archive_cli import centre_of, flask


def nearest_rank(values, pct):
    ordered = sorted(values)
    return round(ordered[(len(ordered) * pct + 99) // 100 - 1], 1) if ordered else None


def seconds(later, earlier):
    parse = lambda t: dt.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ")  # noqa: E731
    return (parse(later) - parse(earlier)).total_seconds()


def independent_count(data_dir):
    """Per service: issued, served, no_show, transferred, cancelled, waits and service times, from
    the gzip'd files (not through History or the report's code)."""
    out = {}
    for path in sorted((data_dir / "archive").glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in list(fh)[1:]:
                record = json.loads(line)
                if record["t"] != "tickets":
                    continue
                t = record["d"]
                row = out.setdefault(t["service"], {"issued": 0, "served": 0, "no_show": 0, "transferred": 0,
                                                    "cancelled": 0, "waits": [], "service": []})
                row["issued"] += 1
                states = [e["state"] for e in t["events"]]
                if t["state"] == "done":
                    row["served"] += 1
                    start = [e["at"] for e in t["events"] if e["state"] == "serving"][-1]
                    row["service"].append(seconds(t["events"][-1]["at"], start))
                elif t["state"] == "transferred":
                    row["transferred"] += 1
                elif "no_show" in states[len(states) - 1 - states[::-1].index("waiting"):]:  # after its last wait
                    row["no_show"] += 1
                else:
                    row["cancelled"] += 1
                calls = [e["at"] for e in t["events"] if e["state"] == "called"]
                if calls:
                    row["waits"].append(seconds(calls[0], t["arrival_at"]))
    return out


def test_report_of_a_simulated_month_equals_an_independent_count(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    made = flask(data_dir, "simulate", "--days", "30", "--per-day", "40", "--seed", "11", "--quiet")
    assert made.returncode == 0, made.stderr
    expected = independent_count(data_dir)
    days = sorted(p.day for p in Archive(data_dir).parts())
    app, centre = centre_of(data_dir)
    try:
        report = insight.queue_report(centre, dt.date.fromisoformat(days[0]), dt.date.fromisoformat(days[-1]))
    finally:
        app.extensions["kiosk"].close()
    got = {s["code"]: s for s in report["services"]}
    assert set(got) == set(expected)
    assert sum(x["transferred"] for x in expected.values()) > 0 and sum(x["no_show"] for x in expected.values()) > 0
    for code, row in expected.items():
        for key in ("issued", "served", "no_show", "transferred", "cancelled"):
            assert got[code][key] == row[key], (code, key)
        assert got[code]["wait_s"] == {"p50": nearest_rank(row["waits"], 50), "p90": nearest_rank(row["waits"], 90),
                                       "max": round(max(row["waits"]), 1)}, code
        assert got[code]["service_s"] == {"p50": nearest_rank(row["service"], 50),
                                          "p90": nearest_rank(row["service"], 90),
                                          "max": round(max(row["service"]), 1)}, code
    assert sum(h["issued"] for h in report["hours"]) == sum(x["issued"] for x in expected.values())
