/* Citizen touchscreen: reset to the language screen after a period without touches, with a
   visible countdown and a "more time" button. The reset is a real form POST (the server clears the
   session) followed by a full page load, so nothing of the previous citizen stays in the page. */
(function () {
  "use strict";

  var NATIVE = ["\u0660", "\u0661", "\u0662", "\u0663", "\u0664", "\u0665", "\u0666", "\u0667", "\u0668", "\u0669"];
  var remaining = 0;
  var resetting = false;

  function box() { return document.getElementById("idle"); }

  function stepIsIdleTimed() {
    return document.querySelector("#main [data-idle='on']") !== null;
  }

  function localDigits(text) {
    var el = box();
    if (!el || el.dataset.nativeDigits !== "yes") { return text; }
    return String(text).replace(/[0-9]/g, function (d) { return NATIVE[Number(d)]; });
  }

  function render() {
    var el = box();
    if (!el) { return; }
    el.hidden = !stepIsIdleTimed();
    var text = document.getElementById("idle-text");
    if (text) { text.textContent = (el.dataset.template || "{s}").replace("{s}", localDigits(remaining)); }
    el.classList.toggle("warning", remaining <= 10);
  }

  function restart() {
    var el = box();
    if (!el) { return; }
    remaining = parseInt(el.dataset.idleS, 10) || 30;
    render();
  }

  function tick() {
    if (resetting || !stepIsIdleTimed()) { render(); return; }
    remaining -= 1;
    if (remaining <= 0) {
      resetting = true;
      clearStorage();
      var form = document.getElementById("reset-form");
      if (form) { form.submit(); }
      return;
    }
    render();
  }

  document.addEventListener("pointerdown", restart, true);
  document.addEventListener("keydown", restart, true);
  document.addEventListener("htmx:afterSettle", restart);
  /* a long press opens Chromium's context menu on a touchscreen */
  document.addEventListener("contextmenu", function (event) { event.preventDefault(); });
  /* htmx notes the current path in sessionStorage when it loads; the kiosk keeps nothing there */
  function clearStorage() {
    try { window.sessionStorage.clear(); window.localStorage.clear(); } catch (err) { /* storage disabled */ }
  }

  document.addEventListener("DOMContentLoaded", function () {
    clearStorage();
    var more = document.getElementById("idle-more");
    if (more) { more.addEventListener("click", restart); }
    restart();
    window.setInterval(tick, 1000);
  });
})();
