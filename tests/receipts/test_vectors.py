"""The published vectors through the Python verifier and the command-line verifier, and their
reproducibility from the committed TEST-ONLY keys."""
from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from flask import Flask

from kiosk import keys
from kiosk.domain import receipts
from kiosk.receipts_cli import EXIT_CANNOT_VERIFY, verify_cli_text, verify_command
from tests.receipts.support import VECTORS_DIR, load_vector, vector_files

RECEIPT_VECTORS = [name for name in vector_files() if load_vector(name)["kind"] == "receipt"]
EXIT_FOR_OUTCOME = {"valid": 0, "invalid": 1, "expired": 3, "revoked": 4}


def vector_time(vector: dict) -> dt.datetime:
    """The vector's `now` as an aware datetime."""
    return dt.datetime.fromisoformat(vector["now"].replace("Z", "+00:00"))


def install(data_dir, vector: dict):
    """Put a receipt vector's trust list and root where a kiosk keeps them: DATA/sync, DATA/keys."""
    (data_dir / "sync").mkdir(exist_ok=True)
    path = data_dir / "sync" / "trust-list.cbor"
    path.write_bytes(base64.b64decode(vector["trust_list"]["signed_base64"]))
    keys.pin_root_keys(data_dir, "".join(root["pem"] for root in vector["root_keys"]))
    return path


def test_index_lists_every_vector_file():
    """Consumers read index.json: it names every vector file and nothing else."""
    on_disk = sorted(p.name for p in VECTORS_DIR.glob("*.json") if p.name != "index.json")
    assert sorted(vector_files()) == on_disk
    names = {load_vector(name)["expected"].get("reason") for name in vector_files()}
    for required in ("ok", "bad_signature", "unknown_key", "unsupported_alg", "receipt_expired",
                     "key_revoked", "receipt_revoked", "rollback"):
        assert required in names


def test_vector_keys_are_marked_test_only():
    """Committed private keys exist only for the vectors and say so in their names."""
    pems = list((VECTORS_DIR / "keys").glob("*.pem"))
    assert pems and all(p.name.startswith("TEST-ONLY-") for p in pems)


def test_vectors_regenerate_byte_for_byte(maker):
    """Deterministic ES256 and fixed inputs: the script reproduces every committed file exactly."""
    files = maker.render(maker.build_vectors(maker.load_keys()))
    assert sorted(files) == sorted(p.name for p in VECTORS_DIR.glob("*.json"))
    for name, body in files.items():
        assert (VECTORS_DIR / name).read_text(encoding="utf-8") == body, name


@pytest.mark.parametrize("name", vector_files())
def test_python_verifier(maker, name):
    """(1) The Python verifier gives exactly each vector's expected result."""
    vector = load_vector(name)
    assert maker.python_result(vector) == vector["expected"]


@pytest.mark.parametrize("name", RECEIPT_VECTORS)
def test_cli_verifier(data_dir, name):
    """(3) The command-line verifier: exit code by outcome, the verdict line, contents when signed."""
    vector = load_vector(name)
    path = install(data_dir, vector)
    code, message = verify_cli_text(vector["qr_text"], path, now=vector_time(vector))
    expected = vector["expected"]
    assert code == EXIT_FOR_OUTCOME[expected["outcome"]]
    first_line = message.splitlines()[0]
    assert first_line == f"{expected['outcome'].upper()} ({expected['reason']}): {expected['message']}"
    if expected["receipt"] is not None:
        assert f"official fee  {expected['receipt']['fee_iqd']} IQD" in message
        assert f"receipt id    {expected['receipt']['receipt_id']}" in message
    else:
        assert "official fee" not in message
    assert "trust list    sequence 7" in message


def run_cli(args: list[str], data_dir=None, **kwargs):
    """Invoke `verify` as `flask --app ... verify` would, on a bare app with DATA_DIR set."""
    app = Flask("verify-test")
    app.config["DATA_DIR"] = str(data_dir) if data_dir is not None else None
    app.cli.add_command(verify_command)
    return app.test_cli_runner().invoke(args=["verify", *args], **kwargs)


def test_cli_command_reads_the_data_directory(data_dir, tmp_path):
    """`verify CODE --data-dir DATA --at TIME` prints the verdict and exits with its code."""
    vector = load_vector("valid.json")
    install(data_dir, vector)
    result = run_cli([vector["qr_text"], "--data-dir", str(data_dir), "--at", vector["now"]],
                     data_dir=tmp_path / "elsewhere")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("VALID (ok)")
    assert "service       PS-BIRTH" in result.output


def test_cli_command_inside_the_flask_app_uses_its_data_dir(data_dir):
    """Registered on an app, the command finds DATA/sync/trust-list.cbor from app.config['DATA_DIR']."""
    vector = load_vector("expired.json")
    install(data_dir, vector)
    result = run_cli([vector["qr_text"], "--at", vector["now"]], data_dir=data_dir)
    assert result.exit_code == 3, result.output
    assert result.output.startswith("EXPIRED (receipt_expired)")


def test_cli_reads_the_code_from_standard_input_and_strips_a_scanners_newline(data_dir):
    """`verify -` takes the code from a pipe or a scanner, whose Enter ends the line."""
    vector = load_vector("revoked-receipt.json")
    install(data_dir, vector)
    result = run_cli(["-", "--at", vector["now"]], data_dir=data_dir, input=vector["qr_text"] + "\r\n")
    assert result.exit_code == 4, result.output
    assert result.output.startswith("REVOKED (receipt_revoked)")


def test_cli_explicit_trust_list_and_root_paths(tmp_path):
    """--trust-list and --root-key work without any data directory."""
    vector = load_vector("valid.json")
    listed = tmp_path / "list.cbor"
    listed.write_bytes(base64.b64decode(vector["trust_list"]["signed_base64"]))
    root = tmp_path / "root.pem"
    root.write_text(vector["root_keys"][0]["pem"], encoding="ascii")
    result = run_cli([vector["qr_text"], "--trust-list", str(listed), "--root-key", str(root),
                      "--at", vector["now"]])
    assert result.exit_code == 0, result.output


def test_cli_cannot_verify_without_a_trust_list(data_dir):
    """No trust list yet: exit 2 and say to run the sync; the receipt is not called invalid."""
    vector = load_vector("valid.json")
    keys.pin_root_keys(data_dir, vector["root_keys"][0]["pem"])
    code, message = verify_cli_text(vector["qr_text"], data_dir / "sync" / "trust-list.cbor")
    assert code == EXIT_CANNOT_VERIFY
    assert "no trust list" in message and "sync" in message


def test_cli_cannot_verify_without_a_pinned_root(data_dir):
    """No pinned root: exit 2 naming what to install."""
    vector = load_vector("valid.json")
    path = install(data_dir, vector)
    keys.pinned_roots_path(data_dir).unlink()
    code, message = verify_cli_text(vector["qr_text"], path)
    assert code == EXIT_CANNOT_VERIFY and "root key" in message


def test_cli_refuses_a_tampered_stored_trust_list(data_dir):
    """A trust list edited on disk fails its root signature: exit 2, nothing verified against it."""
    vector = load_vector("valid.json")
    path = install(data_dir, vector)
    data = bytearray(path.read_bytes())
    data[40] ^= 1
    path.write_bytes(bytes(data))
    code, message = verify_cli_text(vector["qr_text"], path, now=vector_time(vector))
    assert code == EXIT_CANNOT_VERIFY and "refused" in message


def test_cli_without_any_data_directory_is_a_usage_error():
    """Neither --data-dir, --trust-list nor an app DATA_DIR: a usage error, not a traceback."""
    result = run_cli(["HTTPS://X/R#AA"])
    assert result.exit_code == 2 and "no data directory" in result.output


def test_cli_rejects_a_time_without_zone(data_dir):
    """--at needs a zone, so a dispute is not decided in the wrong time zone."""
    result = run_cli(["X", "--at", "2026-11-22T09:00"], data_dir=data_dir)
    assert result.exit_code == 2 and "time zone" in result.output


def test_receipt_vectors_share_one_trust_list():
    """Every receipt vector carries the same trust list, so a consumer can load it once."""
    lists = {json.dumps(load_vector(name)["trust_list"], sort_keys=True) for name in RECEIPT_VECTORS}
    assert len(lists) == 1
    assert receipts.MAX_QR_TEXT_LENGTH > max(len(load_vector(n)["qr_text"]) for n in RECEIPT_VECTORS)
