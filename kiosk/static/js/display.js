/* Hall display: spoken calls and the polling fallback.

   Each `ticket-called` event from the stream carries the list of clips that announce it (chime,
   then the words in the ticket's language). Calls are queued and played strictly one after the
   other, never overlapping, however fast they arrive. The board itself is refreshed by htmx on
   the stream's events; while the stream is down it is polled every few seconds instead. */
(function () {
  "use strict";

  var POLL_MS = 3000;
  var GAP_MS = 400;
  var queue = [];
  var log = [];
  var playing = false;
  var pollTimer = null;

  window.kioskAnnouncer = { queue: queue, log: log };

  function playNext() {
    if (playing || queue.length === 0) { return; }
    playing = true;
    var call = queue.shift();
    var entry = { number: call.number, counter: call.counter, clips: call.clips.length,
                  startedAt: performance.now(), endedAt: null, problem: null };
    log.push(entry);
    /* create every clip at once so they load in parallel; then play them in order */
    var clips = call.clips.map(function (url) {
      var audio = new Audio(url);
      audio.preload = "auto";
      return audio;
    });
    var index = 0;

    function finishCall() {
      entry.endedAt = performance.now();
      playing = false;
      window.setTimeout(playNext, GAP_MS);
    }

    function playClip() {
      if (index >= clips.length) { finishCall(); return; }
      var audio = clips[index];
      var done = false;
      function next(problem) {
        if (done) { return; }
        done = true;
        if (problem && !entry.problem) { entry.problem = problem; }
        index += 1;
        playClip();
      }
      audio.addEventListener("ended", function () { next(null); });
      audio.addEventListener("error", function () { next("error"); });
      var started = audio.play();
      if (started && typeof started.catch === "function") {
        started.catch(function (err) { next(err && err.name ? err.name : "play"); });
      }
    }

    playClip();
  }

  function announce(data) {
    if (!data || !Array.isArray(data.clips)) { return; }
    queue.push({ number: String(data.number), counter: String(data.counter), clips: data.clips });
    playNext();
  }

  function startPolling() {
    if (pollTimer !== null) { return; }
    pollTimer = window.setInterval(function () {
      var board = document.getElementById("board");
      if (board && window.htmx) { window.htmx.trigger(board, "poll"); }
    }, POLL_MS);
  }

  function stopPolling() {
    if (pollTimer === null) { return; }
    window.clearInterval(pollTimer);
    pollTimer = null;
  }

  document.addEventListener("htmx:sseBeforeMessage", function (event) {
    if (event.target && event.target.id === "announcer") {
      event.preventDefault();
      try { announce(JSON.parse(event.detail.data)); } catch (err) { /* a malformed event is skipped */ }
    }
  });
  document.addEventListener("htmx:sseError", startPolling);
  document.addEventListener("htmx:sseOpen", stopPolling);
})();
