// slipway serve: the only script of the pages. It follows a running build's log with
// server-sent events; every other page and action works without it.
(function () {
  "use strict";
  var pre = document.getElementById("log");
  if (!pre || pre.dataset.live !== "true" || !window.EventSource) {
    return;
  }
  var status = document.getElementById("live-status");
  var url = "/web/builds/" + encodeURIComponent(pre.dataset.build) +
    "/events?from=" + encodeURIComponent(pre.dataset.offset);
  var events = new EventSource(url);
  if (status) {
    status.textContent = "following the log live";
  }
  events.addEventListener("log", function (e) {
    // A text node: log lines are text, never markup.
    pre.appendChild(document.createTextNode(e.data + "\n"));
    var box = pre.getBoundingClientRect();
    if (box.bottom - window.innerHeight < 200) {
      window.scrollTo(0, document.body.scrollHeight);
    }
  });
  events.addEventListener("end", function (e) {
    events.close();
    if (status) {
      status.textContent = "the build ended (" + e.data + "); reloading";
    }
    window.setTimeout(function () { window.location.reload(); }, 800);
  });
  events.onerror = function () {
    if (status) {
      status.textContent = "reconnecting to the log";
    }
  };
})();
