"""The command line: demo-data, check, compact, serve, config errors."""
import os
import subprocess
import sys

import pytest
import requests

from kiosk import create_app
from kiosk.config import ConfigError, load
from tests.processes import child_env, free_port, start_kiosk


def flask(data_dir, *args, env=None, timeout=60):
    return subprocess.run([sys.executable, "-m", "flask", "--app", "kiosk", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "KIOSK_DATA_DIR": str(data_dir), **(env or {})})


def test_demo_data_twice_check_and_compact(data_dir):
    first = flask(data_dir, "demo-data")
    assert first.returncode == 0 and "3 new services" in first.stdout and "DEMO ONLY" in first.stdout
    second = flask(data_dir, "demo-data")
    assert "0 new services, 0 new counters, 0 new priority_classes, 0 new staff" in second.stdout
    check = flask(data_dir, "check")
    assert check.returncode == 0 and "FAIL" not in check.stdout and "audit" not in check.stderr
    compact = flask(data_dir, "compact")
    assert compact.returncode == 0 and "snapshot at commit 1" in compact.stdout


def test_check_fails_on_tampered_audit(data_dir):
    flask(data_dir, "demo-data")
    app = create_app({"DATA_DIR": str(data_dir)})
    with app.app_context():
        store = app.extensions["kiosk"].centre.store
        entry = store.all("audit")[0]
        store.put("audit", {**entry, "actor": "mallory"})
        app.extensions["kiosk"].close()
    check = flask(data_dir, "check")
    assert check.returncode == 1 and "FAIL  entry 1 was altered" in check.stdout


def test_second_process_is_refused_with_a_clear_message(data_dir):
    app = create_app({"DATA_DIR": str(data_dir)})
    with app.app_context():
        app.extensions["kiosk"].centre
        out = flask(data_dir, "demo-data")
        app.extensions["kiosk"].close()
    assert out.returncode == 1 and "already open for writing by process" in out.stderr


def test_serve_answers_http(data_dir, tmp_path):
    """`flask --app kiosk serve` says where it serves and issues tickets there."""
    flask(data_dir, "demo-data")
    port, log = free_port(), tmp_path / "serve.log"
    proc = start_kiosk(child_env(KIOSK_DATA_DIR=str(data_dir)), port, log)
    try:
        r = requests.post(f"http://127.0.0.1:{port}/api/v1/tickets", json={"service": "A"}, timeout=30)
        assert r.status_code == 201 and r.json()["ticket"]["number"] == "A-001"
    finally:
        proc.terminate()
        proc.wait(20)
    assert "serving on http://127.0.0.1" in log.read_text()


def test_config_layers_and_errors(tmp_path):
    (tmp_path / "kiosk.toml").write_text('centre = "ERB-01"\npriority_ratio = 3\n', encoding="utf-8")
    cfg = load(tmp_path, environ={"KIOSK_PRIORITY_RATIO": "4"})
    assert cfg["CENTRE"] == "ERB-01" and cfg["PRIORITY_RATIO"] == 4 and cfg["DATA_DIR"] == (tmp_path / "data").resolve()
    (tmp_path / "kiosk.toml").write_text('centre = "ERB-01"\npriorty_ratio = 3\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown setting 'priorty_ratio'"):
        load(tmp_path, environ={})
    (tmp_path / "kiosk.toml").write_text("", encoding="utf-8")
    for env, message in (({"KIOSK_MAX_WAIT_MIN": "soon"}, "MAX_WAIT_MIN must be a whole number"),
                         ({"KIOSK_TIMEZONE": "Mars/Olympus"}, "not a known time zone"),
                         ({"KIOSK_LANGUAGES": "ar,fr"}, "LANGUAGES may contain")):
        with pytest.raises(ConfigError, match=message):
            load(tmp_path, environ=env)
    (tmp_path / "kiosk.toml").write_text("centre = [", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(tmp_path, environ={})


def test_secret_key_is_generated_once_with_private_mode(data_dir):
    a = create_app({"DATA_DIR": str(data_dir)})
    b = create_app({"DATA_DIR": str(data_dir)})
    assert a.config["SECRET_KEY"] == b.config["SECRET_KEY"]
    assert (data_dir / "secret.key").stat().st_mode & 0o777 == 0o600


def test_pin_root_accepts_a_public_key_and_refuses_garbage(data_dir, tmp_path):
    from kiosk.keys import create_root_key, load_pinned_root_keys, public_key_pem
    root = create_root_key(tmp_path / "root.pem")
    pem = tmp_path / "root-public.pem"
    pem.write_text(public_key_pem(root.public_key), encoding="ascii")
    out = flask(data_dir, "pin-root", str(pem))
    assert out.returncode == 0 and "pinned root key(s):" in out.stdout
    assert len(load_pinned_root_keys(data_dir)) == 1
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key", encoding="ascii")
    out = flask(data_dir, "pin-root", str(bad))
    assert out.returncode == 1 and "bad.pem" in out.stderr
    assert len(load_pinned_root_keys(data_dir)) == 1, "the earlier pin is kept"
