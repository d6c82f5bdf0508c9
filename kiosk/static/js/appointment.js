/* Appointment check-in at the touchscreen: the code field keeps the focus, so a keyboard-wedge
   scanner's typing (and its Enter, which submits) always lands in it; the on-screen keypad types
   into it too. Listeners sit on the document, so they keep working after htmx swaps the screen. */
(function () {
  "use strict";

  function field() { return document.getElementById("code"); }

  function focusField() {
    var input = field();
    if (input && document.activeElement !== input) { input.focus({ preventScroll: true }); }
  }

  document.addEventListener("click", function (event) {
    var key = event.target.closest ? event.target.closest("[data-key]") : null;
    var input = field();
    if (!key || !input) { return; }
    if (key.dataset.key === "back") {
      input.value = input.value.slice(0, -1);
    } else if (input.value.length < input.maxLength) {
      input.value += key.dataset.key;
    }
    focusField();
  });

  /* a tap anywhere else (or the idle countdown's button) must not leave the scanner typing nowhere */
  document.addEventListener("focusout", function () { window.setTimeout(focusField, 0); });
  document.addEventListener("htmx:afterSettle", focusField);
  document.addEventListener("DOMContentLoaded", focusField);
})();
