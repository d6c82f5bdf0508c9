"""TinyDB's own released test suite, run against our journaled storage.

The sdist of the TinyDB version pinned in requirements.txt is fetched with pip at test time (once,
into .cache/, which git ignores); its tests run unchanged in a child pytest, with only the `db`
fixture replaced (tests/store/tinydb_upstream_conftest.py), and every test that does not pass must
be listed below with the reason. A listed test that starts passing fails this test too, so the
list stays true.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import tinydb

from tests.processes import ROOT, child_env

CACHE = ROOT / ".cache"
HERE = Path(__file__).resolve().parent

_GENERATED = "our document ids are ULID strings, not TinyDB's max(id)+1 integers"
# test id -> why our storage differs from TinyDB's on it (see docs/store.md, "TinyDB compatibility")
EXPECTED_DIFFERENCES = {
    "tests/test_tables.py::test_next_id[kiosk]": f"expects _get_next_id() to count 1, 2, 3: {_GENERATED}",
    "tests/test_tables.py::test_truncate_table[kiosk]": f"expects ids to restart at 1 after truncate(): {_GENERATED}",
    "tests/test_tables.py::test_table_repr[kiosk]":
        "matches the repr against TinyDB's own storage class names (ours is kiosk.store.journal.JournalStorage)",
    "tests/test_tinydb.py::test_insert_ids[kiosk]": f"expects insert() to return 1, 2: {_GENERATED}",
    "tests/test_tinydb.py::test_insert_with_doc_id[kiosk]":
        f"expects a generated id of 1, then 78 after a given id of 77: {_GENERATED}",
    "tests/test_tinydb.py::test_insert_with_duplicate_doc_id[kiosk]":
        f"expects the first generated id to be 1 (it then reuses it): {_GENERATED}",
    "tests/test_tinydb.py::test_insert_multiple_with_ids[kiosk]": f"expects insert_multiple() to return [1, 2, 3]: {_GENERATED}",
    "tests/test_tinydb.py::test_remove_ids[kiosk]": f"removes the fixture's documents as ids 1 and 2: {_GENERATED}",
    "tests/test_tinydb.py::test_remove_returns_ids[kiosk]": f"expects the removed fixture document to be id 2: {_GENERATED}",
    "tests/test_tinydb.py::test_remove_ids_mixed[kiosk]": f"removes the fixture's first document as id 1: {_GENERATED}",
    "tests/test_tinydb.py::test_update_returns_ids[kiosk]": f"expects updated ids [1, 2]: {_GENERATED}",
    "tests/test_tinydb.py::test_update_ids[kiosk]": f"updates the fixture's documents as ids 1 and 2: {_GENERATED}",
    "tests/test_tinydb.py::test_update_ids_mixed[kiosk]": f"updates the fixture's first document as id 1: {_GENERATED}",
    "tests/test_tinydb.py::test_upsert[kiosk]": f"expects the upserted document to get id 4: {_GENERATED}",
    "tests/test_tinydb.py::test_upsert_by_id[kiosk]":
        "addresses the fixture's first document as id 1 and expects search() to return integer doc_ids; "
        f"ids are stored as strings (an integer id given is kept as its decimal string): {_GENERATED}",
    "tests/test_tinydb.py::test_contains_ids[kiosk]": f"looks the fixture's documents up as ids 1 and 2: {_GENERATED}",
}


def pinned_version() -> str:
    """The TinyDB version requirements.txt pins (the one the kiosk runs on)."""
    match = re.search(r"^tinydb==(\S+)", (ROOT / "requirements.txt").read_text(encoding="utf-8"), re.M)
    assert match, "requirements.txt must pin tinydb==VERSION"
    return match.group(1)


def network_env() -> dict[str, str]:
    """pip's environment: the real clock (the faketime pass would make PyPI's certificate look expired)."""
    return {k: v for k, v in child_env().items() if k != "LD_PRELOAD" and not k.startswith("FAKETIME")}


def upstream_suite(version: str) -> Path:
    """TinyDB's released tests for `version`, unpacked under .cache/ (downloaded on first use)."""
    target = CACHE / f"tinydb-{version}-tests"
    if (target / "tests" / "upstream_conftest.py").exists():
        return target
    CACHE.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        tmp = Path(tmp)
        fetched = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
             f"tinydb=={version}", "--dest", str(tmp)],
            capture_output=True, text=True, timeout=300, env=network_env())
        assert fetched.returncode == 0, f"pip could not fetch TinyDB {version}'s sdist:\n{fetched.stderr[-3000:]}"
        sdist, = tmp.glob(f"tinydb-{version}.tar.gz")
        unpacked = tmp / "suite"
        prefix = f"tinydb-{version}/tests/"
        with tarfile.open(sdist) as archive:
            members = [m for m in archive.getmembers() if m.name.startswith(prefix) and m.isfile()]
            assert members, f"the sdist of TinyDB {version} holds no tests"
            for member in members:
                member.name = member.name[len(f"tinydb-{version}/"):]
            archive.extractall(unpacked, members=members, filter="data")
        tests = unpacked / "tests"
        (tests / "conftest.py").rename(tests / "upstream_conftest.py")
        # a config of its own: the suite must not pick up this repository's pytest.ini
        (unpacked / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        unpacked.rename(target)
    return target


def outcomes(report: Path) -> dict[str, str]:
    """Test id -> passed/failed/error/skipped from a JUnit XML report."""
    out = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        node = case.get("classname").replace(".", "/") + ".py::" + case.get("name")
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        out[node] = kinds[0] if kinds else "passed"
    return out


def test_tinydb_released_suite_passes_on_our_storage(tmp_path):
    """Every test of TinyDB's suite passes on KioskDB (each followed by a restart check), except the
    listed ones, which must still fail."""
    version = pinned_version()
    assert tinydb.__version__ == version, f"installed TinyDB {tinydb.__version__}, pinned {version}"
    suite = upstream_suite(version)
    shutil.copyfile(HERE / "tinydb_upstream_conftest.py", suite / "tests" / "conftest.py")
    report = tmp_path / "report.xml"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "t"),
         f"--junitxml={report}", "tests"],
        cwd=suite, capture_output=True, text=True, timeout=600, env=child_env(PYTHONDONTWRITEBYTECODE="1"))
    output = run.stdout[-20000:] + run.stderr[-5000:]
    assert report.exists(), output
    results = outcomes(report)
    on_our_storage = {node for node in results if node.endswith("[kiosk]")}
    assert len(on_our_storage) > 60, f"the suite ran only {len(on_our_storage)} tests on our storage:\n{output}"
    unknown = set(EXPECTED_DIFFERENCES) - set(results)
    assert not unknown, f"listed differences that the suite does not have: {sorted(unknown)}"
    not_passed = {node for node, kind in results.items() if kind != "passed"}
    unexpected = sorted(not_passed - set(EXPECTED_DIFFERENCES))
    assert not unexpected, f"TinyDB tests that fail on our storage: {unexpected}\n{output}"
    now_passing = sorted(set(EXPECTED_DIFFERENCES) - not_passed)
    assert not now_passing, f"listed as differing but passing now (remove them from the list): {now_passing}"
    assert run.returncode == (1 if EXPECTED_DIFFERENCES else 0), output
