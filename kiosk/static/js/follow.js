/* Follow your ticket on your phone: keep the page current and alert when the ticket is called.

   The `#follow` block is re-fetched by htmx on each `ticket-changed` event of the ticket's stream;
   while the stream is down it is polled instead. When the ticket is called (or called again) the
   phone vibrates and chimes, where it allows: browsers play sound and vibrate only after the
   person has touched the page, so the "alert me" button is that touch. */
(function () {
  "use strict";

  var POLL_MS = 5000;
  var pollTimer = null;
  var audio = null;
  var last = null;
  var state = { alerts: 0 };

  window.kioskFollow = state;

  function shown() {
    var el = document.querySelector("#follow [data-state]");
    return el ? { state: el.dataset.state, calls: el.dataset.calls } : null;
  }

  function alertCall() {
    state.alerts += 1;
    var active = navigator.userActivation ? navigator.userActivation.hasBeenActive : false;
    if (active && typeof navigator.vibrate === "function") { navigator.vibrate([400, 200, 400, 200, 400]); }
    if (audio) {
      audio.muted = false;
      audio.currentTime = 0;
      var played = audio.play();
      if (played && typeof played.catch === "function") { played.catch(function () { /* not allowed here */ }); }
    }
  }

  function changed() {
    var now = shown();
    if (!now) { return; }
    if (last && now.state === "called" && (last.state !== "called" || last.calls !== now.calls)) { alertCall(); }
    last = now;
  }

  function startPolling() {
    if (pollTimer !== null) { return; }
    pollTimer = window.setInterval(function () {
      var box = document.getElementById("follow");
      if (box && window.htmx) { window.htmx.trigger(box, "poll"); }
    }, POLL_MS);
  }

  function stopPolling() {
    if (pollTimer === null) { return; }
    window.clearInterval(pollTimer);
    pollTimer = null;
  }

  function armAlerts() {
    var box = document.getElementById("phone-alerts");
    audio = new Audio(box.dataset.sound);
    audio.muted = true;  /* played once, silently, inside the touch: later plays are allowed */
    var played = audio.play();
    if (played && typeof played.then === "function") {
      played.then(function () { audio.pause(); }, function () { /* sound not allowed: vibration may be */ });
    }
    document.getElementById("alerts-on").hidden = true;
    document.getElementById("alerts-ready").hidden = false;
  }

  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.target && event.target.id === "follow") { changed(); }
  });
  document.addEventListener("htmx:sseError", startPolling);
  document.addEventListener("htmx:sseOpen", stopPolling);
  document.addEventListener("DOMContentLoaded", function () {
    last = shown();
    var box = document.getElementById("phone-alerts");
    if (box) {
      box.hidden = false;
      document.getElementById("alerts-on").addEventListener("click", armAlerts);
    }
  });
})();
