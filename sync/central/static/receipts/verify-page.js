// The /R page: verify the receipt in the URL fragment with the browser verifier (WebCrypto), show
// its contents, then ask central for the live status by posting the whole signed text; the answer
// also names the centre and the service in the page's language (until then, or without a
// connection, the page shows the codes the QR holds).
// Dates and numbers are written as central's pages write them: the server puts the language's
// date pattern, month names, digit-group separator and time zone on the page, so the result does
// not depend on the browser's own locale data (which lacks Sorani).
// External module (no inline script, no eval): runs under `script-src 'self'`.
import { openTrustList, receiptTextFromLocation, verifyReceipt } from "/R/receipt-verify.js";

const page = document.getElementById("verify");
const ARABIC_INDIC = "٠١٢٣٤٥٦٧٨٩";

/** The translated text the server rendered into the page for a key. */
function text(attribute, key) {
  const el = page.querySelector(`#texts [${attribute}="${key}"]`);
  return el ? el.textContent : key;
}

/** Digits in the page language's numbering (Arabic-Indic for Arabic and Sorani). */
function localDigits(value) {
  const s = String(value);
  return page.dataset.nativeDigits === "yes" ? s.replace(/[0-9]/g, (d) => ARABIC_INDIC[Number(d)]) : s;
}

/** A whole number with the language's digit groups ("25,000", "٢٥٬٠٠٠"). */
function grouped(value) {
  return localDigits(String(Math.trunc(value)).replace(/\B(?=(\d{3})+(?!\d))/g, page.dataset.group));
}

/** The parts of a UTC ISO time on the clock of the centres' time zone, or null if unreadable. */
function localParts(iso) {
  const moment = new Date(iso);
  if (Number.isNaN(moment.getTime())) return null;
  const parts = {};
  const format = new Intl.DateTimeFormat("en-GB", {
    timeZone: page.dataset.timezone, year: "numeric", month: "numeric", day: "numeric",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  });
  for (const part of format.formatToParts(moment)) parts[part.type] = part.value;
  return parts;
}

/** A UTC ISO time as its local date ("4 December 2026", "٤ كانون الأول ٢٠٢٦"): due dates, expiry. */
function day(iso) {
  const parts = localParts(iso);
  if (!parts) return iso;
  const month = page.dataset.months.split("|")[Number(parts.month) - 1];
  return localDigits(page.dataset.datePattern.replace("{d}", String(Number(parts.day))).replace("{y}", parts.year))
    .replace("{M}", month);
}

/** A UTC ISO time as its local date and 24-hour time. */
function when(iso) {
  const parts = localParts(iso);
  if (!parts) return iso;
  return day(iso) + page.dataset.comma + localDigits(`${parts.hour}:${parts.minute}`);
}

/** Keep the receipt in the address when the citizen switches language. */
function keepFragmentOnLanguageLinks() {
  for (const link of document.querySelectorAll("a[data-lang]")) {
    link.href = `?lang=${encodeURIComponent(link.dataset.lang)}${location.hash}`;
  }
}

/** Show the verdict's outcome, reason and (when the signature is good) the receipt's contents. */
function showVerdict(verdict) {
  const outcome = document.getElementById("outcome");
  outcome.dataset.outcome = verdict.outcome;
  outcome.textContent = text("data-outcome-text", verdict.outcome);
  document.getElementById("reason").textContent = text("data-reason-text", verdict.reason);
  document.getElementById("reason").dataset.reason = verdict.reason;
  const receipt = verdict.receipt;
  if (!receipt) return;
  showFields({
    centre: receipt.centre,
    service: receipt.service === "GEN" ? text("data-status-text", "referral") : receipt.service,
    ticket: receipt.ticket,
    receipt_id: receipt.receipt_id,
    issued_at: when(receipt.issued_at),
    due_at: day(receipt.due_at),
    fee_iqd: receipt.fee_iqd
      ? text("data-status-text", "fee").replace("%(fee)s", grouped(receipt.fee_iqd))
      : text("data-status-text", "free"),
    status: text("data-status-text", receipt.status),
    expires_at: day(receipt.expires_at),
  });
  document.getElementById("contents").hidden = false;
}

/** Put values into the receipt's contents. */
function showFields(fields) {
  for (const [name, value] of Object.entries(fields)) {
    const el = page.querySelector(`#contents [data-field="${name}"]`);
    if (el) el.textContent = value;
  }
}

/** Ask central for the current status of the receipt's request (the whole signed text is sent). */
async function showLiveStatus(qrText) {
  const live = document.getElementById("live");
  const line = document.getElementById("live-status");
  live.hidden = false;
  try {
    const response = await fetch(page.dataset.status, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ qr_text: qrText, lang: page.dataset.lang }),
      credentials: "omit",
      cache: "no-store",
    });
    if (!response.ok) throw new Error(`status ${response.status}`);
    const answer = await response.json();
    if (answer.names) showNames(answer.names);
    if (!answer.status) {
      line.dataset.status = "unknown";
      line.textContent = text("data-status-text", "unknown");
      return;
    }
    line.dataset.status = answer.status.status;
    line.dataset.overdue = answer.status.overdue ? "yes" : "no";
    let message = text("data-status-text", answer.status.status);
    if (answer.status.changed_at) message += ` · ${when(answer.status.changed_at)}`;
    if (answer.status.overdue) message += ` · ${text("data-status-text", "overdue")}`;
    line.textContent = message;
  } catch (err) {
    line.dataset.status = "offline";
    line.textContent = text("data-status-text", "offline");
  }
}

/** The centre's and the service's names from central, in place of the codes. */
function showNames(names) {
  for (const name of ["centre", "service"]) {
    const el = page.querySelector(`#contents [data-field="${name}"]`);
    if (el && names[name]) {
      el.textContent = names[name];
      el.dataset.named = "yes";
    }
  }
}

/** Base64 to bytes. */
function fromBase64(value) {
  return Uint8Array.from(atob(value), (c) => c.charCodeAt(0));
}

async function main() {
  keepFragmentOnLanguageLinks();
  const outcome = document.getElementById("outcome");
  if (location.hash.length < 2) {
    outcome.dataset.outcome = "empty";
    outcome.textContent = text("data-outcome-text", "empty");
    return;
  }
  const qrText = receiptTextFromLocation(location);
  let trustList;
  try {
    const response = await fetch(page.dataset.trustList, { credentials: "omit" });
    if (!response.ok) throw new Error(`trust list ${response.status}`);
    const published = await response.json();
    trustList = await openTrustList(fromBase64(published.signed_base64), published.root_keys);
  } catch (err) {
    outcome.dataset.outcome = "error";
    outcome.textContent = text("data-outcome-text", "error");
    return;
  }
  const verdict = await verifyReceipt(qrText, trustList, new Date());
  showVerdict(verdict);
  if (verdict.receipt && verdict.reason !== "key_not_valid" && verdict.reason !== "centre_mismatch") {
    await showLiveStatus(qrText);
  }
}

main();
