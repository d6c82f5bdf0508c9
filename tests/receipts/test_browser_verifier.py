"""(2) The browser verifier (kiosk/static/js/receipt-verify.js) in real headless Chromium: the
published vectors, a differential run against the Python verifier, and the phone's /R#... flow."""
from __future__ import annotations

import base64
import datetime as dt
import http.server
import random
import threading
from pathlib import Path

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from kiosk import keys
from kiosk.domain import receipts, trustlist
from tests.receipts.support import listing, load_vector, make_receipt, vector_files

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

MODULE = Path(__file__).resolve().parents[2] / "kiosk" / "static" / "js" / "receipt-verify.js"
CSP = "default-src 'none'; script-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'"
PAGE = b"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>verify</title>
<script type="module" src="/static/js/receipt-verify.js"></script></head><body></body></html>"""

RUN_VECTORS = """async (vectors) => {
  const rv = await import("/static/js/receipt-verify.js");
  const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const out = {};
  for (const v of vectors) {
    const roots = v.root_keys.map((r) => r.jwk);
    if (v.kind === "receipt") {
      const opened = await rv.openTrustList(bytes(v.trust_list.signed_base64), roots);
      out[v.name] = {
        opened,
        fromSigned: await rv.verifyReceipt(v.qr_text, opened, new Date(v.now)),
        fromJson: await rv.verifyReceipt(v.qr_text, v.trust_list.json, new Date(v.now)),
      };
    } else {
      try {
        const list = await rv.openTrustList(bytes(v.signed_base64), roots, { acceptedSequence: v.accepted_sequence });
        out[v.name] = { accepted: true, reason: null, sequence: list.sequence, json: list };
      } catch (err) {
        if (!(err instanceof rv.TrustListError)) throw err;
        out[v.name] = { accepted: false, reason: err.reason, sequence: null, json: null };
      }
    }
  }
  return out;
}"""

RUN_TEXTS = """async ({ texts, trustList, now }) => {
  const rv = await import("/static/js/receipt-verify.js");
  const out = [];
  for (const text of texts) out.push(await rv.verifyReceipt(text, trustList, new Date(now)));
  return out;
}"""


class _Site(http.server.BaseHTTPRequestHandler):
    """The test page, the module, and whatever extra files a test publishes."""

    files: dict[str, tuple[bytes, str]] = {}

    def do_GET(self):  # noqa: N802 - http.server's naming
        """Serve a known path with a strict CSP, 404 otherwise."""
        path = self.path.split("?")[0]
        if path in ("/", "/R"):
            body, kind = PAGE, "text/html; charset=utf-8"
        elif path == "/static/js/receipt-verify.js":
            body, kind = MODULE.read_bytes(), "text/javascript; charset=utf-8"
        elif path in self.files:
            body, kind = self.files[path]
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        """Keep test output quiet."""


@pytest.fixture(scope="module")
def site():
    """A loopback HTTP server (http://127.0.0.1 is a secure context, so WebCrypto is available)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    thread = threading.Thread(target=server.serve_forever, name="receipt-site", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
    _Site.files.clear()


@pytest.fixture
def page(browser, site):
    """A fresh page on the test site; fails the test on any console error or CSP violation."""
    context = browser.new_context()
    tab = context.new_page()
    problems = []
    tab.on("console", lambda message: message.type == "error" and problems.append(message.text))
    tab.on("pageerror", lambda error: problems.append(str(error)))
    tab.goto(site + "/")
    assert tab.evaluate("window.isSecureContext && typeof crypto.subtle.verify === 'function'")
    yield tab
    context.close()
    assert problems == []


def test_vectors_in_chromium(page):
    """Every vector: the trust list opens to the same JSON and each receipt gets the same verdict,
    whether the list was opened from its signed bytes or given as central's JSON."""
    vectors = [load_vector(name) for name in vector_files()]
    results = page.evaluate(RUN_VECTORS, vectors)
    assert sorted(results) == sorted(v["name"] for v in vectors)
    for vector in vectors:
        got = results[vector["name"]]
        if vector["kind"] == "receipt":
            assert got["opened"] == vector["trust_list"]["json"], vector["name"]
            assert got["fromSigned"] == vector["expected"], vector["name"]
            assert got["fromJson"] == vector["expected"], vector["name"]
        else:
            assert got == vector["expected"], vector["name"]


def _mutations(text: str, rng: random.Random, count: int) -> list[str]:
    """Single-character replacements, insertions and deletions of `text`."""
    pool = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567abcz019=#/:. \n\u0663\u06d5"
    out = []
    for _ in range(count):
        i = rng.randrange(len(text))
        op = rng.choice("rid")
        if op == "d":
            out.append(text[:i] + text[i + 1:])
        elif op == "i":
            out.append(text[:i] + rng.choice(pool) + text[i:])
        else:
            out.append(text[:i] + rng.choice(pool) + text[i + 1:])
    return out


def _forgeries(text: str, host: str) -> list[str]:
    """Hand-built envelope edits: headers, signature forms, canonical-form breaks, bignums."""
    data = receipts.parse_qr_text(text, host)
    protected, _, payload, signature = cbor2.loads(data).value
    kid = cbor2.loads(protected)[4]

    def wrap(*items, raw=None):
        """QR text of a COSE_Sign1 of `items`, or of `raw` bytes as given."""
        return receipts.qr_text(raw if raw is not None else
                                cbor2.dumps(cbor2.CBORTag(18, list(items)), canonical=True), host)
    high_s = signature[:32] + (receipts._P256_ORDER - int.from_bytes(signature[32:], "big")).to_bytes(32, "big")
    return [
        wrap(protected, {1: -7}, payload, signature),
        wrap(protected, {1: 2**64 - 1}, payload, signature),
        wrap(protected, {"1": -8}, payload, signature),
        wrap(cbor2.dumps({1: -8, 4: kid}), {}, payload, signature),
        wrap(cbor2.dumps({1: 2**63, 4: kid}), {}, payload, signature),
        wrap(cbor2.dumps({4: kid, 1: -7}), {}, payload, signature),
        wrap(cbor2.dumps({1: -7, 4: kid, 5: b""}, canonical=True), {}, payload, signature),
        wrap(protected, {}, payload, high_s),
        wrap(protected, {}, payload, signature[:63]),
        wrap(protected, {}, payload, signature, raw=b"\xd2\x98\x04" + data[2:]),
        wrap(protected, {}, payload, signature, raw=data + b"\x00"),
        wrap(protected, {}, payload, signature, raw=data[1:]),
        wrap(protected, {}, payload, signature, raw=b"\xd3" + data[1:]),
        wrap(protected, {}, payload, signature, raw=b"\xf6"),
        wrap(protected, {}, payload, signature, raw=b"\xd2\xf9\x3c\x00"),
        receipts.qr_text(data, "OTHER.EXAMPLE"),
        "HTTPS://" + host + "/R#" + "\U0001F600" * 10,
    ]


def test_differential_against_the_python_verifier(page):
    """Hundreds of edited and forged texts: the browser's verdict equals the Python verdict for each."""
    vector = load_vector("valid.json")
    host = vector["trust_list"]["json"]["verify_host"]
    roots = keys.load_public_keys_pem("".join(r["pem"] for r in vector["root_keys"]))
    accepted = trustlist.open_trust_list(base64.b64decode(vector["trust_list"]["signed_base64"]), roots)
    now = dt.datetime.fromisoformat(vector["now"].replace("Z", "+00:00"))
    rng = random.Random(20261122)
    texts = _mutations(vector["qr_text"], rng, 400) + _forgeries(vector["qr_text"], host)
    texts += [receipts.qr_text(rng.randbytes(rng.randrange(0, 200)), host) for _ in range(100)]
    texts += [load_vector(name)["qr_text"] for name in vector_files() if load_vector(name)["kind"] == "receipt"]
    expected = [receipts.verify(text, accepted, now).to_json() for text in texts]
    got = page.evaluate(RUN_TEXTS, {"texts": texts, "trustList": vector["trust_list"]["json"], "now": vector["now"]})
    mismatches = [(t, e, g) for t, e, g in zip(texts, expected, got) if e != g]
    assert mismatches == []
    assert {e["reason"] for e in expected} >= {"malformed", "bad_signature", "unsupported_alg", "wrong_host", "ok"}


def test_phone_flow_from_the_url_fragment(browser, site):
    """A phone opens HTTPS://HOST/R#...: the page rebuilds the text from its location, fetches the
    signed trust list from its own origin, checks it under the pinned root and verifies."""
    host = site.removeprefix("http://").upper()
    centre, root = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    signed_list = trustlist.seal_trust_list(listing(centre, verify_host=host), root)
    _Site.files["/trust-list.cbor"] = (signed_list, "application/cbor")
    text = receipts.issue(make_receipt(), centre, host)
    context = browser.new_context()
    tab = context.new_page()
    try:
        tab.goto(site + "/R#" + text.split("#", 1)[1])
        verdict = tab.evaluate("""async ({ rootJwk, now }) => {
          const rv = await import("/static/js/receipt-verify.js");
          const response = await fetch("/trust-list.cbor");
          const list = await rv.openTrustList(new Uint8Array(await response.arrayBuffer()), [rootJwk]);
          return { text: rv.receiptTextFromLocation(location),
                   verdict: await rv.verifyReceipt(rv.receiptTextFromLocation(location), list, new Date(now)) };
        }""", {"rootJwk": trustlist.public_jwk(root.public_key()), "now": "2026-11-22T10:15:00Z"})
    finally:
        context.close()
    assert verdict["text"] == text
    assert verdict["verdict"]["outcome"] == "valid"
    assert verdict["verdict"]["receipt"] == make_receipt().to_json()
