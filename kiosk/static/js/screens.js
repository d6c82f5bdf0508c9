/* Shared by every screen. htmx stays silent when the server cannot be reached or answers with an
   error; show a banner instead, and hide it again after the next successful request. */
(function () {
  "use strict";

  function banner(show) {
    var el = document.getElementById("connection-error");
    if (el) { el.hidden = !show; }
  }

  document.addEventListener("htmx:sendError", function () { banner(true); });
  document.addEventListener("htmx:responseError", function () { banner(true); });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail && event.detail.successful) { banner(false); }
  });
})();
