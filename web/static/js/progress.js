// Follows the progress of an action live: every list rendered by templates/progress.html
// (an element with data-progress-url) gets the API's Server-Sent Events appended as they come.
// The page already shows the events so far; only later ones (by seq) are added. At the final
// event the stream is closed, a "progress:final" event (detail: the event) is dispatched on the
// list, and the page is reloaded when the list asks for it (data-reload-on-final).
// An instance that waits for payment (an element with data-await-instance, its API URL) has no
// action yet: the instance is polled until its deploy begins (billing starts it when Stripe's
// webhook comes), then the waiting notice is swapped for #deploy-begun and the stream followed.
(function () {
  "use strict";
  var AWAIT_MS = 2000;
  var WAITING = ["awaiting_payment", "suspended"];

  function lastSeq(list) {
    var items = list.querySelectorAll("li[data-seq]");
    return items.length ? Number(items[items.length - 1].dataset.seq) : 0;
  }

  function text(event) {
    var words = event.message || event.step;
    if (event.failed && event.reason && event.reason !== event.message) {
      words += " " + event.reason;
    }
    return words;
  }

  function append(list, event) {
    list.querySelectorAll("li.current").forEach(function (item) {
      item.classList.remove("current");
      item.classList.add("done");
    });
    var item = document.createElement("li");
    item.dataset.seq = String(event.seq);
    item.className = event.failed ? "failed" : (event.done ? "done" : "current");
    item.textContent = text(event);
    list.appendChild(item);
  }

  function follow(list, onRefused) {
    if (list.dataset.final === "true" || typeof EventSource === "undefined") {
      return;
    }
    var source = new EventSource(list.dataset.progressUrl);
    source.addEventListener("error", function () {
      // a refused stream (no action recorded yet) is closed by the browser, not retried
      if (onRefused && source.readyState === EventSource.CLOSED) { onRefused(); }
    });
    source.addEventListener("progress", function (message) {
      var event;
      try {
        event = JSON.parse(message.data);
      } catch (problem) {
        return;
      }
      if (event.seq > lastSeq(list)) {
        append(list, event);
      }
      if (event.done || event.failed) {
        source.close();
        list.dataset.final = "true";
        list.dispatchEvent(new CustomEvent("progress:final", { detail: event, bubbles: true }));
        if (list.hasAttribute("data-reload-on-final")) {
          window.location.reload();
        }
      }
    });
  }

  function begun(waiting) {
    waiting.hidden = true;
    var shown = document.getElementById("deploy-begun");
    if (shown) { shown.hidden = false; }
  }

  function awaitDeploy(waiting, list) {
    var url = waiting.getAttribute("data-await-instance");
    function poll() {
      fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (instance) {
          if (instance && WAITING.indexOf(instance.status) < 0) {
            begun(waiting);
            follow(list, function () { window.setTimeout(poll, AWAIT_MS); });
          } else {
            window.setTimeout(poll, AWAIT_MS);
          }
        })
        .catch(function () { window.setTimeout(poll, AWAIT_MS); });
    }
    window.setTimeout(poll, AWAIT_MS);
  }

  var waiting = document.querySelector("[data-await-instance]");
  document.querySelectorAll("[data-progress-url]").forEach(function (list) {
    if (waiting) { awaitDeploy(waiting, list); } else { follow(list); }
  });
})();
