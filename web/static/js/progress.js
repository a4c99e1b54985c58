// Follows the progress of an action live: every list rendered by templates/progress.html
// (an element with data-progress-url) gets the API's Server-Sent Events appended as they come.
// The page already shows the events so far; only later ones (by seq) are added. At the final
// event the stream is closed, a "progress:final" event (detail: the event) is dispatched on the
// list, and the page is reloaded when the list asks for it (data-reload-on-final).
(function () {
  "use strict";

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

  function follow(list) {
    if (list.dataset.final === "true" || typeof EventSource === "undefined") {
      return;
    }
    var source = new EventSource(list.dataset.progressUrl);
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

  document.querySelectorAll("[data-progress-url]").forEach(follow);
})();
