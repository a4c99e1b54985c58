// The instance's live log over Server-Sent Events (the API masks secrets before they leave).
// Follows the end while the reader is at the bottom; scrolling up stops that, and Pause stops
// adding lines (kept aside, shown on Resume).
(function () {
  "use strict";
  var MAX_LINES = 2000;
  var view = document.getElementById("log-view");
  if (!view || !window.EventSource) { return; }
  var toggle = document.getElementById("log-toggle");
  var state = document.getElementById("log-state");
  var paused = false, held = [], follow = true;

  function atBottom() { return view.scrollHeight - view.scrollTop - view.clientHeight < 24; }
  view.addEventListener("scroll", function () { follow = atBottom(); });

  function append(lines) {
    var empty = document.getElementById("log-empty");
    if (empty) { empty.remove(); }
    view.appendChild(document.createTextNode(lines.join("\n") + "\n"));
    while (view.childNodes.length > MAX_LINES) { view.removeChild(view.firstChild); }
    if (follow) { view.scrollTop = view.scrollHeight; }
  }

  var source = new EventSource(view.getAttribute("data-logs-url"));
  source.addEventListener("log", function (event) {
    if (paused) { held.push(event.data); } else { append([event.data]); }
  });
  var opened = 0;
  source.addEventListener("open", function () {
    // A reconnected stream starts again with the tail: show it once, not twice.
    if (opened++) { view.textContent = ""; held = []; }
    state.textContent = "";
  });
  source.addEventListener("error", function () {
    state.textContent = "The log stream paused; reconnecting…";
  });

  toggle.hidden = false;
  toggle.addEventListener("click", function () {
    paused = !paused;
    toggle.textContent = paused ? "Resume" : "Pause";
    toggle.setAttribute("aria-pressed", paused ? "true" : "false");
    state.textContent = paused ? "Paused: new lines are kept until you resume." : "";
    if (!paused && held.length) { append(held.splice(0, held.length)); }
  });
  toggle.setAttribute("aria-pressed", "false");
})();
