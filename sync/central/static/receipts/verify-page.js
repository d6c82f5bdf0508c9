// The /R page: verify the receipt in the URL fragment with the browser verifier (WebCrypto), show
// its contents, then ask central for the live status by posting the whole signed text.
// External module (no inline script, no eval): runs under `script-src 'self'`.
import { openTrustList, receiptTextFromLocation, verifyReceipt } from "/R/receipt-verify.js";

const page = document.getElementById("verify");
const ARABIC_INDIC = "٠١٢٣٤٥٦٧٨٩";

/** The translated text the server rendered into the page for a key. */
function text(attribute, key) {
  const el = page.querySelector(`#texts [${attribute}="${key}"]`);
  return el ? el.textContent : key;
}

/** Digits in the page language's numbering (Arabic-Indic for Arabic and Kurdish). */
function localDigits(value) {
  const s = String(value);
  return page.dataset.lang === "en" ? s : s.replace(/[0-9]/g, (d) => ARABIC_INDIC[Number(d)]);
}

/** A UTC ISO time as the centre's local date, with the month in words in the page's language and
    order (the browser's own data has no Sorani month names), and the 24-hour time unless
    `dateOnly` (a due date has no time of day); in the language's digits. */
function when(iso, dateOnly) {
  const words = JSON.parse(page.dataset.dateWords);
  const parts = {};
  try {
    const format = new Intl.DateTimeFormat("en-GB", { timeZone: "Asia/Baghdad", year: "numeric", month: "numeric",
      day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    for (const part of format.formatToParts(new Date(iso))) parts[part.type] = part.value;
  } catch (err) {
    return iso;
  }
  const date = words.pattern.replace("{d}", parts.day).replace("{m}", words.months[Number(parts.month) - 1])
    .replace("{y}", parts.year);
  return localDigits(dateOnly ? date : `${date}${words.comma}${parts.hour}:${parts.minute}`);
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
  const fields = {
    centre: receipt.centre,
    service: receipt.service === "GEN" ? text("data-status-text", "referral") : receipt.service,
    ticket: receipt.ticket,
    receipt_id: receipt.receipt_id,
    issued_at: when(receipt.issued_at),
    due_at: when(receipt.due_at, true),
    fee_iqd: receipt.fee_iqd
      ? text("data-status-text", "fee").replace("%(fee)s", localDigits(receipt.fee_iqd.toLocaleString("en")
        .replace(/,/g, page.dataset.lang === "en" ? "," : "\u066c")))
      : text("data-status-text", "free"),
    status: text("data-status-text", receipt.status),
    expires_at: when(receipt.expires_at, true),
  };
  for (const [name, value] of Object.entries(fields)) {
    const el = page.querySelector(`#contents [data-field="${name}"]`);
    if (el) el.textContent = value;
  }
  document.getElementById("contents").hidden = false;
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
      body: JSON.stringify({ qr_text: qrText }),
      credentials: "omit",
      cache: "no-store",
    });
    if (!response.ok) throw new Error(`status ${response.status}`);
    const answer = await response.json();
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
