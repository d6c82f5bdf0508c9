"""The package (pyproject.toml): the wheel builds without network access, installs into a new
virtual environment, and the installed kiosk serves its screens, static files and translations
from the installed files, not from this source tree."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import pytest
import requests
from babel.messages.pofile import read_po

from tests.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "setup.py", "README.md", "requirements.txt", "kiosk", "sync", "hardware", "templates")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.mo", "*.egg-info")


def run(*argv, **kwargs) -> subprocess.CompletedProcess:
    """Run a command, failing the test with its output when it fails."""
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, f"{argv}: {result.stdout[-3000:]}{result.stderr[-3000:]}"
    return result


def outside_env(**settings) -> dict:
    """This environment without the source tree on the import path (a PYTHONPATH of other
    folders, such as the faketime pass's, is kept)."""
    path = [str(Path(p).resolve()) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
            if p and Path(p).resolve() != ROOT]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith(("KIOSK_", "CENTRAL_"))}
    if path:
        env["PYTHONPATH"] = os.pathsep.join(path)
    return {**env, **settings}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the sources (no build folder is left in the tree)."""
    base = tmp_path_factory.mktemp("build")
    src = base / "src"
    src.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=IGNORE)
        else:
            shutil.copy2(path, src / name)
    out = base / "dist"
    run(sys.executable, "-m", "pip", "wheel", src, "--no-deps", "--no-build-isolation", "--no-index", "-w", out)
    (built,) = out.glob("centre_kiosk-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A new virtual environment with the wheel installed. Its dependencies come from this
    environment's site-packages (a .pth line), as a machine without network access would use a
    local wheel cache; `pip check` proves the wheel's pinned requirements are all met."""
    target = tmp_path_factory.mktemp("venv") / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", target)
    python = target / "bin" / "python"
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    Path(purelib, "zz-shared-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-index", "--no-deps", "-q", wheel)
    run(sys.executable, "-m", "pip", "--python", python, "check")
    return target


def test_wheel_carries_templates_static_catalogues_and_migrations(wheel):
    """Package data: templates, static files, compiled catalogues, fonts and migrations are in the wheel."""
    from kiosk import __version__
    from kiosk.i18n import catalogues
    assert wheel.name.startswith(f"centre_kiosk-{__version__}-")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for lang in ("ar", "ckb", "en"):
            # built from the .po at build time, byte for byte what the app would compile
            assert zf.read(f"kiosk/i18n/{lang}/LC_MESSAGES/messages.mo") == catalogues.compile_bytes(lang)
        meta = zf.read(f"centre_kiosk-{__version__}.dist-info/METADATA").decode()
        scripts = zf.read(f"centre_kiosk-{__version__}.dist-info/entry_points.txt").decode()
    for name in ("kiosk/templates/base.html", "kiosk/templates/admin/index.html", "kiosk/templates/central/_devices.html",
                 "kiosk/static/vendor/htmx/htmx.min.js", "kiosk/static/css/screens.css",
                 "kiosk/static/fonts/KioskSans-Arabic-Regular.woff2", "hardware/fonts/KioskSans-Regular.ttf",
                 "sync/central/migrations/env.py", "sync/central/migrations/versions/0001_initial.py"):
        assert name in names, name
    assert any(n.startswith("kiosk/static/sounds/ckb/") for n in names)
    assert any(n.startswith("kiosk/static/pictograms/") for n in names)
    assert any(n.startswith("sync/central/static/") for n in names)
    assert not any(n.startswith(("tests/", "bench/")) for n in names)
    pins = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    for pin in pins:
        assert f"Requires-Dist: {pin}" in meta
    for script in ("centre-kiosk", "centre-central", "centre-sync"):
        assert f"{script} = kiosk.ops.entry:" in scripts


def test_installed_kiosk_serves_from_its_own_files(venv, tmp_path):
    """The installed kiosk (not this tree) answers /kiosk, serves a static file and a translated page."""
    python, bin_dir = venv / "bin" / "python", venv / "bin"
    where = run(python, "-c", "import kiosk, kiosk.app; print(kiosk.__file__); print(kiosk.app.TEMPLATES)",
                cwd=tmp_path, env=outside_env()).stdout.split()
    assert all(Path(p).is_relative_to(venv) for p in where), where
    env = outside_env(KIOSK_DATA_DIR=str(tmp_path / "data"), KIOSK_INSTANCE_PATH=str(tmp_path / "instance"),
                      KIOSK_DEFAULT_LANGUAGE="ckb")
    run(bin_dir / "centre-kiosk", "demo-data", cwd=tmp_path, env=env)
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([bin_dir / "centre-kiosk", "serve", "--port", str(port)], cwd=tmp_path, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        with requests.Session() as http:
            for _ in range(600):
                assert proc.poll() is None, log.read_text(errors="replace")
                try:
                    page = http.get(f"{base}/kiosk", timeout=5)
                    break
                except requests.ConnectionError:
                    time.sleep(0.05)
            assert page.status_code == 200 and 'dir="rtl"' in page.text
            script = http.get(f"{base}/static/vendor/htmx/htmx.min.js", timeout=5)
            assert script.status_code == 200
            assert script.content == (ROOT / "kiosk/static/vendor/htmx/htmx.min.js").read_bytes()
            login = http.get(f"{base}/staff/login", timeout=5)
            assert login.status_code == 200
            with open(ROOT / "kiosk/i18n/ckb/LC_MESSAGES/messages.po", "rb") as fh:
                sorani = read_po(fh).get("Staff login").string
            assert sorani and sorani in login.text and "Staff login" not in login.text
            health = http.get(f"{base}/healthz", timeout=5)
            assert health.status_code in (200, 503) and health.json()["version"] == run(
                python, "-c", "import kiosk; print(kiosk.__version__)", env=outside_env()).stdout.strip()
    finally:
        proc.terminate()
        proc.wait(30)
    # the catalogues compiled into the wheel were current: the app did not rewrite them
    mo = next(venv.glob("lib/python*/site-packages/kiosk/i18n/ckb/LC_MESSAGES/messages.mo"))
    from kiosk.i18n import catalogues
    assert mo.read_bytes() == catalogues.compile_bytes("ckb")
    # central from the same installation: its migrations and templates are found
    central_env = outside_env(CENTRAL_INSTANCE_PATH=str(tmp_path / "central"))
    routes = run(bin_dir / "centre-central", "routes", cwd=tmp_path, env=central_env).stdout
    assert "/api/v1/" in routes
    assert (tmp_path / "central" / "central.sqlite3").exists()
    assert "sync" in run(bin_dir / "centre-sync", "--help", cwd=tmp_path, env=env).stdout.lower()
