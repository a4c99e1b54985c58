// Keeps the dashboard's cards and an instance's page live: polls the API (the session cookie
// authenticates these GETs) and updates the facts in place. The words come from the page
// (data-words), the same mapping the server renders with; without this script the page is
// simply as it was rendered.
(function () {
  "use strict";
  var POLL_MS = 5000;

  function uptime(since) {
    if (!since) { return null; }
    var minutes = Math.max(0, Math.floor((Date.now() - Date.parse(since)) / 60000));
    var days = Math.floor(minutes / 1440), hours = Math.floor((minutes % 1440) / 60);
    minutes = minutes % 60;
    if (days) { return "up " + days + " d " + hours + " h"; }
    if (hours) { return "up " + hours + " h " + minutes + " min"; }
    return minutes ? "up " + minutes + " min" : "up less than a minute";
  }

  function showsUptime(words, instance) { return words.shows_uptime.indexOf(instance.status) >= 0; }

  function setText(root, field, text) {
    var node = root.querySelector('[data-field="' + field + '"]');
    if (node && node.textContent !== text) { node.textContent = text; }
  }

  function setBadge(root, words, instance) {
    var badge = root.querySelector('[data-field="badge"]');
    var status = words.statuses[instance.status];
    if (!badge || !status) { return; }
    var label = instance.action ? words.actions[instance.action] : status.label;
    var className = "badge" + (status.badge ? " " + status.badge : "");
    if (badge.textContent !== label) { badge.textContent = label; }
    if (badge.className !== className) { badge.className = className; }
    setText(root, "meaning", status.meaning);
  }

  // Attention items the server rendered, dropped once what they were about is over.
  function settleAttention(root, instance) {
    var items = root.querySelectorAll("[data-attention]");
    for (var i = 0; i < items.length; i++) {
      var kind = items[i].getAttribute("data-attention");
      var over = (kind === "action" && !instance.action) ||
                 (kind === "status" && instance.status !== root.getAttribute("data-status")) ||
                 (kind === "owner" && instance.telegram_user_id !== null) ||
                 (kind === "bot" && instance.telegram_bot_username !== null);
      if (over) { items[i].hidden = true; }
    }
  }

  function updateCommon(root, words, instance) {
    setBadge(root, words, instance);
    settleAttention(root, instance);
    setText(root, "restart_count", String(instance.restart_count));
    setText(root, "uptime", showsUptime(words, instance) ? (uptime(instance.running_since) || "—") : "—");
  }

  function updatePage(root, words, instance) {
    updateCommon(root, words, instance);
    setText(root, "status_reason", instance.status_reason || "—");
    setText(root, "model", instance.model);
    setText(root, "telegram_user_id", instance.telegram_user_id === null ? "waiting for a pairing code"
                                                                         : String(instance.telegram_user_id));
    var since = showsUptime(words, instance) && instance.running_since;
    setText(root, "running_since", since ? since.slice(0, 16).replace("T", " ") + " UTC (" + uptime(since) + ")" : "—");
    var offers = instance.action ? [] : (words.offers[instance.status] || []);
    var forms = root.querySelectorAll("form[data-action]");
    for (var i = 0; i < forms.length; i++) {
      forms[i].hidden = offers.indexOf(forms[i].getAttribute("data-action")) < 0;
    }
    var none = document.getElementById("no-actions");
    if (none) {
      none.hidden = offers.length > 0;
      none.textContent = instance.action ? words.actions[instance.action] + ": wait for it to finish."
                                         : "Nothing can be done to it right now.";
    }
  }

  function updateHealth(root, health) {
    setText(root, "live", health.live ? "yes" : "no");
    setText(root, "ready", health.ready ? "yes" : "no");
    var memory = health.memory || {};
    var used = memory.used_mb === null || memory.used_mb === undefined ? "—" : memory.used_mb + " MB";
    setText(root, "memory", memory.limit_mb ? used + " of " + memory.limit_mb + " MB" : used);
    setText(root, "checked_at", (health.checked_at || "").slice(11, 19) + " UTC");
  }

  function getJson(url) {
    return fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : null; });
  }

  function every(work) {
    var busy = false;
    window.setInterval(function () {
      if (busy || document.hidden) { return; }
      busy = true;
      work().catch(function () { /* offline for a moment: the next poll tries again */ })
            .then(function () { busy = false; });
    }, POLL_MS);
  }

  // Settings: a model of another provider is not kept when the provider changes.
  var provider = document.getElementById("model_provider"), model = document.getElementById("model");
  if (provider && model) {
    provider.addEventListener("change", function () {
      var chosen = model.options[model.selectedIndex];
      var group = chosen && chosen.parentNode.getAttribute("data-provider");
      if (group && group !== provider.value) { model.value = ""; }
    });
  }

  var page = document.querySelector("[data-poll-instance]");
  if (page) {
    var words = JSON.parse(page.getAttribute("data-words"));
    every(function () {
      return Promise.all([
        getJson(page.getAttribute("data-poll-instance")).then(function (instance) {
          if (instance) { updatePage(page, words, instance); }
        }),
        getJson(page.getAttribute("data-poll-health")).then(function (health) {
          if (health) { updateHealth(page, health); }
        })
      ]);
    });
  }

  var list = document.querySelector("[data-poll-list]");
  if (list) {
    var listWords = JSON.parse(list.getAttribute("data-words"));
    every(function () {
      return getJson(list.getAttribute("data-poll-list")).then(function (body) {
        (body ? body.instances : []).forEach(function (instance) {
          var card = document.getElementById("instance-" + instance.id);
          if (card) { updateCommon(card, listWords, instance); }
        });
      });
    });
  }
})();
