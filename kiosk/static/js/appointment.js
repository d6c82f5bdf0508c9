/* Appointment check-in at the touchscreen: the code field keeps the focus, so a keyboard-wedge
   scanner's typing (and its Enter, which submits) always lands in it; keystrokes that arrive while
   the focus is elsewhere for a moment (a tap just before the scan) are put into the field too, so a
   scan never loses its first characters. The on-screen keypad types into the field as well.
   Listeners sit on the document, so they keep working after htmx swaps the screen. */
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

  document.addEventListener("keydown", function (event) {
    var input = field();
    if (!input || event.target === input || event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (event.key === "Enter") {
      if (input.value) { event.preventDefault(); input.form.requestSubmit(); }
    } else if (event.key.length === 1) {
      event.preventDefault();
      if (input.value.length < input.maxLength) { input.value += event.key; }
      focusField();
    }
  });

  /* a tap anywhere else (or the idle countdown's button) must not leave the scanner typing nowhere */
  document.addEventListener("focusout", function () { window.setTimeout(focusField, 0); });
  document.addEventListener("htmx:afterSettle", focusField);
  document.addEventListener("DOMContentLoaded", focusField);
})();
