/* Shared by every screen. htmx stays silent when the server cannot be reached or answers with an
   error; show a banner instead, and hide it after the next successful request. The two are never
   confused: "connection problem" only when no answer came (the network or the server is down),
   the server's refusal or failure otherwise (a refusal the screen can explain comes back as a page
   that says why, so this banner means something went wrong on the server). */
(function () {
  "use strict";

  function banner(id, show) {
    var el = document.getElementById(id);
    if (el) { el.hidden = !show; }
  }

  function problem(kind) {
    banner("connection-error", kind === "network");
    banner("response-error", kind === "server");
  }

  document.addEventListener("htmx:sendError", function () { problem("network"); });
  document.addEventListener("htmx:timeout", function () { problem("network"); });
  document.addEventListener("htmx:responseError", function () { problem("server"); });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail && event.detail.successful) { problem(null); }
  });
})();
