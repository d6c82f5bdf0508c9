"""Accessibility checks run on every screen in real Chromium: axe-core (vendored), plus two checks
axe misses: touch targets of at least 48 x 48 CSS px on the citizen screens (axe checks 24 px) and
text contrast of at least 4.5:1 for every text node (axe skips Arabic-script text, taking joined
letters for an icon font)."""
from __future__ import annotations

from pathlib import Path

AXE_JS = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
MIN_TARGET_PX = 48
MIN_CONTRAST = 4.5

_axe_source: str | None = None


def _axe() -> str:
    """The axe-core source (read once)."""
    global _axe_source
    if _axe_source is None:
        _axe_source = AXE_JS.read_text(encoding="utf-8")
    return _axe_source


def axe_violations(page, impacts=("serious", "critical")) -> list[dict]:
    """axe-core's violations of the given impacts on the current page.

    axe is evaluated through the DevTools protocol, not added as a <script>, so the page's strict
    CSP stays in force and is not reported as violated by the test itself."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate("() => { " + _axe() + "\n}")
    result = page.evaluate(
        "async (tags) => { const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}});"
        " return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))})); }", AXE_TAGS)
    return [v for v in result if v["impact"] in impacts]


SMALL_TARGETS_JS = """(min) => {
  const out = [];
  for (const el of document.querySelectorAll('button, a[href], input:not([type=hidden]), select, [role=button]')) {
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || style.display === 'none' || el.closest('[hidden]')) continue;
    if (el.closest('.visually-hidden')) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.width < min || r.height < min) out.push(`${el.tagName.toLowerCase()}#${el.id || ''}.${el.className} ${Math.round(r.width)}x${Math.round(r.height)}`);
  }
  return out;
}"""


def small_targets(page, minimum: int = MIN_TARGET_PX) -> list[str]:
    """Visible interactive elements smaller than `minimum` CSS px in either direction."""
    return page.evaluate(SMALL_TARGETS_JS, minimum)


LOW_CONTRAST_JS = """(min) => {
  function parse(c) {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  }
  function lum(c) {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  }
  function blend(top, bottom) {
    const a = top.a;
    return {r: top.r * a + bottom.r * (1 - a), g: top.g * a + bottom.g * (1 - a), b: top.b * a + bottom.b * (1 - a), a: 1};
  }
  function background(el) {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    let color = {r: 255, g: 255, b: 255, a: 1};
    for (let i = layers.length - 1; i >= 0; i--) color = blend(layers[i], color);
    return color;
  }
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.textContent.trim()) continue;
    const el = node.parentElement;
    if (!el || seen.has(el)) continue;
    seen.add(el);
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || el.closest('[hidden]') || el.closest('.visually-hidden')) continue;
    if (el.closest('script, style, noscript')) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    const fg = blend(parse(style.color), background(el));
    const bg = background(el);
    const l1 = lum(fg), l2 = lum(bg);
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    if (ratio < min) out.push(`${el.tagName.toLowerCase()}.${el.className} "${node.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}:1`);
  }
  return out;
}"""


def low_contrast(page, minimum: float = MIN_CONTRAST) -> list[str]:
    """Text nodes (any script, Arabic included) whose contrast with their background is too low."""
    return page.evaluate(LOW_CONTRAST_JS, minimum)


def check_page(page, *, touch: bool) -> list[str]:
    """Every accessibility problem on the current page, as readable lines (empty when clean)."""
    problems = [f"axe {v['id']} [{v['impact']}]: {v['help']} -> {v['nodes']}" for v in axe_violations(page)]
    problems += [f"contrast {x}" for x in low_contrast(page)]
    if touch:
        problems += [f"target {x}" for x in small_targets(page)]
    return problems
