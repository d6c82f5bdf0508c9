// Offline verification of signed receipts in the browser, with WebCrypto (ECDSA P-256, SHA-256).
//
// The same checks, in the same order, with the same verdict JSON as kiosk/domain/receipts.py:
// both verifiers are run against the published vectors in tests/vectors/receipts/.
// Plain ES module: no build step, no dependencies, no eval, works under `script-src 'self'`.
//
//   import { verifyReceipt, openTrustList, receiptTextFromLocation } from "/static/js/receipt-verify.js";
//   const trustList = await openTrustList(signedBytes, [rootJwk]);      // or the JSON form from central
//   const verdict = await verifyReceipt(receiptTextFromLocation(location), trustList, new Date());
//   verdict.outcome  -> "valid" | "invalid" | "expired" | "revoked"; verdict.reason -> a REASONS key

const MAX_QR_TEXT_LENGTH = 600;
const MAX_TRUST_LIST_BYTES = 1 << 20;
const MAX_DEPTH = 16;
const SCHEMA_VERSION = 1;
const TRUST_LIST_VERSION = 1;
const COSE_SIGN1_TAG = 18;
const ALG_ES256 = -7;
const HEADER_ALG = 1;
const HEADER_KID = 4;
const KID_LENGTH = 8;
const SIGNATURE_LENGTH = 64;
const MAX_EPOCH = 253402300799;
const MAX_FEE_IQD = 1e12;
const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551n;
const P256_HALF_ORDER = P256_ORDER / 2n;
const CODE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/;
const HOST_RE = /^[A-Z0-9](?:[A-Z0-9-]{0,61}[A-Z0-9])?(?:\.[A-Z0-9](?:[A-Z0-9-]{0,61}[A-Z0-9])?)*(?::[0-9]{1,5})?$/;
const ANY_PREFIX_RE = /^HTTPS:\/\/[^/#]{1,253}\/R#/u;
const STATUS_LABELS = ["open", "completed", "rejected", "referred"];
const RECEIPT_KEYS = 11;  // payload map keys 0..10

export const REASONS = Object.freeze({
  ok: "Authentic receipt, signed by a centre key the ministry trusts.",
  malformed: "This is not a receipt code, or it was damaged or typed wrongly.",
  wrong_host: "This code names a verification site other than the one the trust list names.",
  unsupported_alg: "The code asks for a signature algorithm that receipts never use.",
  unknown_key: "The code was signed by a key the trust list does not know (a sync may be needed).",
  bad_signature: "The signature does not match the contents: the receipt was altered or forged.",
  bad_payload: "The signed contents are not a receipt of a known version.",
  key_not_valid: "The signing key was not in service on the date the receipt says it was issued.",
  centre_mismatch: "The receipt names a centre other than the one its signing key belongs to.",
  key_revoked: "The key that signed this receipt has been revoked: ask the centre for a new receipt.",
  receipt_revoked: "This receipt has been revoked.",
  receipt_expired: "This receipt is past its verification expiry date.",
});

export const TRUST_LIST_REASONS = Object.freeze({
  malformed: "The trust list is damaged or not a trust list.",
  unsupported_alg: "The trust list asks for a signature algorithm other than ES256.",
  unknown_root: "The trust list was signed by a key that is not a pinned root key.",
  bad_signature: "The trust list's signature does not match its contents.",
  bad_payload: "The signed trust list has contents this version cannot read.",
  rollback: "The trust list is older than the one already accepted.",
});

const encoder = new TextEncoder();
const RECEIPT_AAD = encoder.encode("receipt-v1");
const TRUST_LIST_AAD = encoder.encode("trustlist-v1");

/** A receipt or trust list that cannot be accepted; `reason` is a REASONS / TRUST_LIST_REASONS key. */
export class VerifyError extends Error {
  constructor(reason, detail = "") {
    super(detail ? `${reason}: ${detail}` : reason);
    this.name = "VerifyError";
    this.reason = reason;
  }
}

/** A trust list that must not be accepted. */
export class TrustListError extends VerifyError {
  constructor(reason, detail = "") {
    super(reason, detail);
    this.name = "TrustListError";
    this.message = TRUST_LIST_REASONS[reason] + (detail ? ` (${detail})` : "");
  }
}

const malformed = (detail) => new VerifyError("malformed", detail);

// --- encodings --------------------------------------------------------------------------------

/** Bytes of unpadded RFC 4648 Base32, accepting only its one canonical spelling. */
export function base32Decode(text) {
  const chars = [...text];
  if ([1, 3, 6].includes(chars.length % 8)) throw malformed("Base32 length");
  const out = new Uint8Array(Math.floor((chars.length * 5) / 8));
  let buffer = 0;
  let bits = 0;
  let j = 0;
  for (const ch of chars) {
    const value = BASE32.indexOf(ch);
    if (value < 0) throw malformed("not Base32");
    buffer = (buffer << 5) | value;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[j++] = (buffer >> bits) & 0xff;
    }
    buffer &= (1 << bits) - 1;
  }
  // the unused low bits of the last character must be zero, or two texts would mean one receipt
  if (buffer !== 0) throw malformed("Base32 is not canonical");
  return out;
}

/** Lower-case hex of bytes. */
const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/** The 26-character ULID text of 16 bytes. */
function ulidFromBytes(bytes) {
  let value = 0n;
  for (const b of bytes) value = (value << 8n) | BigInt(b);
  let out = "";
  for (let i = 25; i >= 0; i--) out += CROCKFORD[Number((value >> BigInt(5 * i)) & 31n)];
  return out;
}

/** ISO 8601 UTC with milliseconds, as the Python side writes it. */
const isoFromEpoch = (seconds) => new Date(seconds * 1000).toISOString();

/** Canonical CBOR map order: shorter encoded key first, then bytewise. */
function compareBytes(a, b) {
  if (a.length !== b.length) return a.length - b.length;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

/**
 * Decode canonical CBOR restricted to what receipts use: integers, byte and text strings, arrays,
 * maps, and tag 18 at the top (as {tag, value}). Maps come back as Map; integers beyond 2^53 as
 * BigInt. Anything else, a non-shortest head, unsorted or repeated map keys, or trailing bytes: throws.
 */
export function decodeCbor(bytes) {
  let pos = 0;
  const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  const byte = () => {
    if (pos >= bytes.length) throw malformed("truncated CBOR");
    return bytes[pos++];
  };
  const take = (n) => {
    if (typeof n !== "number" || n > bytes.length - pos) throw malformed("truncated CBOR");
    const part = bytes.slice(pos, pos + n);
    pos += n;
    return part;
  };
  const argument = (info) => {
    if (info < 24) return info;
    if (info === 24) {
      const v = byte();
      if (v < 24) throw malformed("CBOR is not in canonical form");
      return v;
    }
    if (info === 25) {
      const v = (byte() << 8) | byte();
      if (v < 0x100) throw malformed("CBOR is not in canonical form");
      return v;
    }
    if (info === 26) {
      const v = ((byte() << 24) >>> 0) + (byte() << 16) + (byte() << 8) + byte();
      if (v < 0x10000) throw malformed("CBOR is not in canonical form");
      return v;
    }
    if (info === 27) {
      const hi = ((byte() << 24) >>> 0) + (byte() << 16) + (byte() << 8) + byte();
      const lo = ((byte() << 24) >>> 0) + (byte() << 16) + (byte() << 8) + byte();
      if (hi === 0) throw malformed("CBOR is not in canonical form");
      const v = (BigInt(hi) << 32n) | BigInt(lo);
      return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    }
    throw malformed("indefinite or reserved CBOR length");
  };
  const item = (depth) => {
    if (depth > MAX_DEPTH) throw malformed("CBOR nested too deeply");
    const initial = byte();
    const major = initial >> 5;
    const info = initial & 31;
    if (major === 7) throw malformed("CBOR simple value or float");
    const arg = argument(info);
    switch (major) {
      case 0:
        return arg;
      case 1:
        return typeof arg === "bigint" ? -1n - arg : -1 - arg;
      case 2:
        return take(arg);
      case 3:
        try {
          return utf8.decode(take(arg));
        } catch (err) {
          if (err instanceof VerifyError) throw err;
          throw malformed("invalid UTF-8");
        }
      case 4: {
        if (typeof arg !== "number" || arg > bytes.length - pos) throw malformed("truncated CBOR");
        const list = [];
        for (let i = 0; i < arg; i++) list.push(item(depth + 1));
        return list;
      }
      case 5: {
        if (typeof arg !== "number" || arg > bytes.length - pos) throw malformed("truncated CBOR");
        const map = new Map();
        let previous = null;
        for (let i = 0; i < arg; i++) {
          const start = pos;
          const key = item(depth + 1);
          const encoded = bytes.subarray(start, pos);
          if (previous !== null && compareBytes(previous, encoded) >= 0) {
            throw malformed("CBOR map keys out of canonical order or repeated");
          }
          previous = encoded;
          map.set(key, item(depth + 1));
        }
        return map;
      }
      case 6:
        if (depth !== 0 || arg !== COSE_SIGN1_TAG) throw malformed("CBOR tag not used here");
        return { tag: arg, value: item(depth + 1) };
      default:
        throw malformed("CBOR major type");
    }
  };
  const value = item(0);
  if (pos !== bytes.length) throw malformed("trailing bytes after CBOR");
  return value;
}

/** The shortest CBOR head for a major type and length. */
function encodeHead(major, length) {
  if (length < 24) return [(major << 5) | length];
  if (length < 0x100) return [(major << 5) | 24, length];
  if (length < 0x10000) return [(major << 5) | 25, length >> 8, length & 0xff];
  return [(major << 5) | 26, (length >>> 24) & 0xff, (length >> 16) & 0xff, (length >> 8) & 0xff, length & 0xff];
}

/** Sig_structure = ["Signature1", protected, external_aad, payload], the bytes COSE signs. */
function sigStructure(protectedBytes, aad, payload) {
  const context = encoder.encode("Signature1");
  const parts = [[0x84], encodeHead(3, context.length), context];
  for (const b of [protectedBytes, aad, payload]) parts.push(encodeHead(2, b.length), b);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

// --- COSE_Sign1 ---------------------------------------------------------------------------------

/** True for a CBOR byte string. */
const isBytes = (v) => v instanceof Uint8Array;
/** True for a CBOR integer small enough to be a Number. */
const isInt = (v) => typeof v === "number" && Number.isInteger(v);

/** Check a COSE_Sign1's shape and header: ES256 only, kid only in the protected header. */
function coseParse(data) {
  const message = decodeCbor(data);
  if (message === null || typeof message !== "object" || message.tag !== COSE_SIGN1_TAG) {
    throw malformed("not a tagged COSE_Sign1");
  }
  const items = message.value;
  if (!Array.isArray(items) || items.length !== 4) throw malformed("COSE_Sign1 must have 4 items");
  const [protectedBytes, unprotected, payload, signature] = items;
  if (!(unprotected instanceof Map) || ![protectedBytes, payload, signature].every(isBytes)) {
    throw malformed("COSE_Sign1 item types");
  }
  // an algorithm must be covered by the signature; one in the unprotected bucket is an attack
  if (unprotected.has(HEADER_ALG)) throw new VerifyError("unsupported_alg", "alg in the unprotected header");
  if (unprotected.size !== 0) throw malformed("unexpected unprotected header");
  const header = decodeCbor(protectedBytes);
  if (!(header instanceof Map)) throw malformed("protected header is not a map");
  const alg = header.get(HEADER_ALG);
  if (alg !== ALG_ES256) throw new VerifyError("unsupported_alg", `alg ${String(alg)}`);
  const kid = header.get(HEADER_KID);
  if (header.size !== 2 || !header.has(HEADER_KID) || !isBytes(kid) || kid.length !== KID_LENGTH) {
    throw malformed("protected header must be exactly {1: -7, 4: kid}");
  }
  if (signature.length !== SIGNATURE_LENGTH) throw malformed("signature is not 64 bytes");
  return { protectedBytes, kid, payload, signature };
}

/** True when the signature is the low-S ES256 signature of `cryptoKey` over the message. */
async function coseVerify(message, cryptoKey, aad) {
  let s = 0n;
  let r = 0n;
  for (let i = 0; i < 32; i++) {
    r = (r << 8n) | BigInt(message.signature[i]);
    s = (s << 8n) | BigInt(message.signature[32 + i]);
  }
  // only the low-S form is valid, so each receipt has exactly one valid text
  if (!(r > 0n && r < P256_ORDER && s > 0n && s <= P256_HALF_ORDER)) return false;
  return crypto.subtle.verify(
    { name: "ECDSA", hash: "SHA-256" },
    cryptoKey,
    message.signature,
    sigStructure(message.protectedBytes, aad, message.payload),
  );
}

/** A P-256 public key from a JWK, for verifying only. */
const importJwk = (jwk) =>
  crypto.subtle.importKey("jwk", { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y }, { name: "ECDSA", namedCurve: "P-256" }, true, ["verify"]);

/** The 8-byte key id: the start of SHA-256 over the SubjectPublicKeyInfo. */
async function kidOfSpki(spki) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", spki)).slice(0, KID_LENGTH);
}

// --- receipts -----------------------------------------------------------------------------------

/** The COSE bytes inside a receipt QR text for `verifyHost`; throws VerifyError otherwise. */
export function parseReceiptText(text, verifyHost) {
  if (typeof text !== "string" || [...text].length > MAX_QR_TEXT_LENGTH) {
    throw malformed("not a string of receipt length");
  }
  const prefix = `HTTPS://${verifyHost}/R#`;
  if (!text.startsWith(prefix)) {
    if (ANY_PREFIX_RE.test(text)) throw new VerifyError("wrong_host", "prefix names another host");
    throw malformed("no receipt prefix");
  }
  return base32Decode(text.slice(prefix.length));
}

/** The canonical receipt text of the page a phone opened from the QR (the fragment never reaches a server). */
export function receiptTextFromLocation(loc) {
  return `HTTPS://${loc.host.toUpperCase()}/R${loc.hash}`;
}

const badPayload = (detail) => new VerifyError("bad_payload", detail);

/** A payload time: whole epoch seconds in range, or bad_payload. */
function epochField(value, name) {
  if (!isInt(value) || value < 0 || value > MAX_EPOCH) throw badPayload(`${name} must be epoch seconds`);
  return value;
}

/** A payload code (centre, service, ticket), or bad_payload. */
function codeField(value, name) {
  if (typeof value !== "string" || !CODE_RE.test(value)) throw badPayload(`${name} is not a code`);
  return value;
}

/** A receipt's JSON form from signed payload bytes (only called once the signature is good). */
function decodePayload(data) {
  let fields;
  try {
    fields = decodeCbor(data);
  } catch (err) {
    if (err instanceof VerifyError) throw badPayload(err.message);
    throw err;
  }
  if (!(fields instanceof Map) || fields.size !== RECEIPT_KEYS) throw badPayload("payload keys");
  for (let k = 0; k < RECEIPT_KEYS; k++) if (!fields.has(k)) throw badPayload("payload keys");
  if (fields.get(0) !== SCHEMA_VERSION) throw badPayload("unknown schema version");
  const rid = fields.get(1);
  if (!isBytes(rid) || rid.length !== 16) throw badPayload("receipt id");
  const issued = epochField(fields.get(5), "issued_at");
  const due = epochField(fields.get(6), "due_at");
  const expires = epochField(fields.get(10), "expires_at");
  const fee = fields.get(7);
  const status = fields.get(8);
  const ref = fields.get(9);
  const receipt = {
    receipt_id: ulidFromBytes(rid),
    centre: codeField(fields.get(2), "centre"),
    service: codeField(fields.get(3), "service"),
    ticket: codeField(fields.get(4), "ticket"),
    issued_at: isoFromEpoch(issued),
    due_at: isoFromEpoch(due),
    fee_iqd: fee,
    status: STATUS_LABELS[status],
    citizen_ref: isBytes(ref) ? hex(ref) : null,
    expires_at: isoFromEpoch(expires),
  };
  if (due < issued) throw badPayload("due_at is before issued_at");
  if (expires <= issued) throw badPayload("expires_at must be after issued_at");
  if (!isInt(fee) || fee < 0 || fee > MAX_FEE_IQD) throw badPayload("fee_iqd");
  if (!isInt(status) || status < 0 || status >= STATUS_LABELS.length) throw badPayload("status");
  if (!isBytes(ref) || ref.length < 8 || ref.length > 32) throw badPayload("citizen_ref");
  return { receipt, issuedMs: issued * 1000, expiresMs: expires * 1000 };
}

/** The verdict object, shaped like Verdict.to_json() in Python. */
function verdict(outcome, reason, kid = null, receipt = null) {
  return { outcome, reason, message: REASONS[reason], kid: kid === null ? null : hex(kid), receipt };
}

/**
 * Verify a receipt QR text against a trust list (the JSON form: keys as JWK) at `now` (a Date).
 * Resolves to {outcome, reason, message, kid, receipt}: the Python verifier's Verdict.to_json().
 */
export async function verifyReceipt(qrText, trustList, now) {
  let message;
  try {
    message = coseParse(parseReceiptText(qrText, trustList.verify_host));
  } catch (err) {
    if (err instanceof VerifyError) return verdict("invalid", err.reason);
    throw err;
  }
  const kidHex = hex(message.kid);
  const keyRevoked = trustList.revoked_keys.includes(kidHex);
  const candidates = trustList.keys.filter((key) => key.kid === kidHex);
  if (candidates.length === 0) {
    // the key is gone from the list, so the signature cannot be checked; the answer is the same
    return keyRevoked ? verdict("revoked", "key_revoked", message.kid) : verdict("invalid", "unknown_key", message.kid);
  }
  let signer = null;
  for (const candidate of candidates) {
    if (await coseVerify(message, await importJwk(candidate.jwk), RECEIPT_AAD)) {
      signer = candidate;
      break;
    }
  }
  if (signer === null) return verdict("invalid", "bad_signature", message.kid);
  // only now, with the signature good, is the content looked at
  let decoded;
  try {
    decoded = decodePayload(message.payload);
  } catch (err) {
    if (err instanceof VerifyError) return verdict("invalid", err.reason, message.kid);
    throw err;
  }
  const { receipt, issuedMs, expiresMs } = decoded;
  if (issuedMs < Date.parse(signer.not_before_at) || issuedMs > Date.parse(signer.not_after_at)) {
    return verdict("invalid", "key_not_valid", message.kid, receipt);
  }
  if (receipt.centre !== signer.centre) return verdict("invalid", "centre_mismatch", message.kid, receipt);
  if (keyRevoked) return verdict("revoked", "key_revoked", message.kid, receipt);
  if (trustList.revoked_receipts.includes(receipt.receipt_id)) {
    return verdict("revoked", "receipt_revoked", message.kid, receipt);
  }
  if (now.getTime() >= expiresMs) return verdict("expired", "receipt_expired", message.kid, receipt);
  return verdict("valid", "ok", message.kid, receipt);
}

// --- trust lists --------------------------------------------------------------------------------

const TOP_FIELDS = ["version", "sequence", "issued_at", "verify_host", "keys", "revoked_keys", "revoked_receipts"];
const KEY_FIELDS = ["kid", "centre", "public_key", "not_before_at", "not_after_at"];
/** True when `map` is a Map with exactly these keys. */
const hasExactly = (map, names) => map instanceof Map && map.size === names.length && names.every((n) => map.has(n));

/** The JSON form of a trust list from its signed payload bytes, or TrustListError("bad_payload"). */
async function decodeTrustList(data) {
  const fail = (detail) => new TrustListError("bad_payload", detail);
  let body;
  try {
    body = decodeCbor(data);
  } catch (err) {
    if (err instanceof VerifyError) throw fail(err.message);
    throw err;
  }
  if (!hasExactly(body, TOP_FIELDS)) throw fail("trust list fields differ from version 1");
  if (body.get("version") !== TRUST_LIST_VERSION) throw fail("unknown trust list version");
  const host = body.get("verify_host");
  if (typeof host !== "string") throw fail("verify_host must be text");
  for (const name of ["keys", "revoked_keys", "revoked_receipts"]) {
    if (!Array.isArray(body.get(name))) throw fail("expected an array");
  }
  const keys = [];
  for (const entry of body.get("keys")) {
    if (!hasExactly(entry, KEY_FIELDS) || !isBytes(entry.get("public_key"))) throw fail("key entry fields");
    const spki = entry.get("public_key");
    let cryptoKey;
    try {
      cryptoKey = await crypto.subtle.importKey("spki", spki, { name: "ECDSA", namedCurve: "P-256" }, true, ["verify"]);
    } catch {
      throw fail("unreadable public key");
    }
    const canonical = new Uint8Array(await crypto.subtle.exportKey("spki", cryptoKey));
    if (compareBytes(canonical, spki) !== 0) throw fail("public key is not in canonical form");
    const kid = await kidOfSpki(spki);
    const centre = entry.get("centre");
    if (typeof centre !== "string" || !CODE_RE.test(centre)) throw fail("centre must be a centre code");
    const notBefore = entry.get("not_before_at");
    const notAfter = entry.get("not_after_at");
    for (const v of [notBefore, notAfter]) if (!isInt(v) || v < 0 || v > MAX_EPOCH) throw fail("key window");
    if (notAfter < notBefore) throw fail("a key's window ends before it starts");
    const listedKid = entry.get("kid");
    if (!isBytes(listedKid) || compareBytes(listedKid, kid) !== 0) throw fail("a key's kid does not match its public key");
    const jwk = await crypto.subtle.exportKey("jwk", cryptoKey);
    keys.push({
      kid: hex(kid),
      centre,
      jwk: { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y },
      not_before_at: isoFromEpoch(notBefore),
      not_after_at: isoFromEpoch(notAfter),
      sortKey: hex(kid) + hex(spki),
    });
  }
  const sequence = body.get("sequence");
  if (!isInt(sequence) || sequence < 0) throw fail("sequence must be a non-negative integer");
  const issued = body.get("issued_at");
  if (!isInt(issued) || issued < 0 || issued > MAX_EPOCH) throw fail("issued_at must be epoch seconds");
  const verifyHost = host.toUpperCase();
  if (!HOST_RE.test(verifyHost) || verifyHost.length > 253) throw fail("verify_host is not a host name");
  const revokedKeys = new Set();
  for (const kid of body.get("revoked_keys")) {
    if (!isBytes(kid) || kid.length !== KID_LENGTH) throw fail("revoked key ids are 8 bytes each");
    revokedKeys.add(hex(kid));
  }
  const revokedReceipts = new Set();
  for (const rid of body.get("revoked_receipts")) {
    if (!isBytes(rid) || rid.length !== 16) throw fail("a ULID is 16 bytes");
    revokedReceipts.add(ulidFromBytes(rid));
  }
  keys.sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0));
  return {
    version: TRUST_LIST_VERSION,
    sequence,
    issued_at: isoFromEpoch(issued),
    verify_host: verifyHost,
    keys: keys.map(({ sortKey, ...key }) => key),
    revoked_keys: [...revokedKeys].sort(),
    revoked_receipts: [...revokedReceipts].sort(),
  };
}

/**
 * Verify a signed trust list (bytes) under pinned root keys (JWKs) and refuse a rollback below
 * `acceptedSequence`. Resolves to the JSON form that verifyReceipt takes; rejects with TrustListError.
 */
export async function openTrustList(data, rootJwks, { acceptedSequence = null } = {}) {
  if (!isBytes(data) || data.length > MAX_TRUST_LIST_BYTES) throw new TrustListError("malformed", "not bytes of trust-list size");
  let message;
  try {
    message = coseParse(data);
  } catch (err) {
    if (err instanceof VerifyError) throw new TrustListError(err.reason, err.message);
    throw err;
  }
  const roots = [];
  for (const jwk of rootJwks) {
    const key = await importJwk(jwk);
    const kid = await kidOfSpki(new Uint8Array(await crypto.subtle.exportKey("spki", key)));
    if (compareBytes(kid, message.kid) === 0) roots.push(key);
  }
  if (roots.length === 0) throw new TrustListError("unknown_root", `kid ${hex(message.kid)}`);
  let signed = false;
  for (const root of roots) if (!signed && (await coseVerify(message, root, TRUST_LIST_AAD))) signed = true;
  if (!signed) throw new TrustListError("bad_signature");
  const trustList = await decodeTrustList(message.payload);
  if (acceptedSequence !== null && trustList.sequence < acceptedSequence) {
    throw new TrustListError("rollback", `sequence ${trustList.sequence} < accepted ${acceptedSequence}`);
  }
  return trustList;
}
