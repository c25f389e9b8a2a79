// Rating on the lists page: keyboard shortcuts and saving without losing a keystroke.
//
// With an item focused, a digit key rates it with that value, "n" presses "can't judge", j/k
// (or the arrow keys) move between items. Shortcuts never fire while the participant types in
// a text field, so typing a request is never hijacked.
//
// A rating belongs to the item that had focus when the key was pressed, whatever the network
// does: the control shows the new rating at once (optimistic), focus moves on at once, and the
// save is queued behind earlier saves of the same item, so an item's ratings reach the server
// in the order they were given. When a save comes back, the control shows what the server
// stored (unless a later rating of that item is still on its way); when it fails, the control
// goes back to the last stored rating, the item is marked and the reason is announced.
// A save the server could not take just then (503 while the database restarts, a gateway error,
// a dropped connection) is sent once more after a short pause before it counts as failed:
// saving a rating is idempotent, so the retry cannot store it twice.
// Without JavaScript the rating buttons are plain form posts.
(function () {
  "use strict";
  var RETRY_DELAY_MS = 1500;  // a database restart or failover is usually over within seconds
  var queues = {};     // form id -> promise of its last queued save
  var latest = {};     // form id -> number of its newest save, so older answers don't overwrite it
  var stored = {};     // form id -> value the server has stored ("" = not rated yet)

  function typing(el) {
    if (!el) return false;
    var tag = el.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable;
  }
  function slots() { return Array.prototype.slice.call(document.querySelectorAll("li.slot")); }
  function currentSlot() {
    var el = document.activeElement;
    return el && el.closest ? el.closest("li.slot") : null;
  }
  function move(from, delta) {
    var all = slots(); if (!all.length) return;
    var i = all.indexOf(from);
    var next = all[Math.max(0, Math.min(all.length - 1, i < 0 ? 0 : i + delta))];
    next.focus(); next.scrollIntoView({ block: "nearest" });
  }

  function pressedValue(form) {
    var b = form.querySelector('button[aria-pressed="true"]');
    return b ? b.value : "";
  }
  function show(form, value) {
    Array.prototype.forEach.call(form.querySelectorAll("button[name=label]"), function (b) {
      var on = value !== "" && b.value === value;
      b.setAttribute("aria-pressed", on ? "true" : "false");
      b.classList.toggle("chosen", on);
    });
  }
  function itemName(form) {
    var title = form.closest("li.slot") && form.closest("li.slot").querySelector(".title");
    return title ? "\u201c" + title.textContent.trim() + "\u201d" : "an item";
  }
  function announce(message) {
    var flash = document.getElementById("flash");
    if (flash) flash.innerHTML = message ? '<p class="error">' + message + "</p>" : "";
  }
  function escapeText(text) {
    var d = document.createElement("div"); d.textContent = text; return d.innerHTML;
  }

  function fragment(html) {
    var t = document.createElement("template"); t.innerHTML = html; return t.content;
  }
  function saved(form, seq, html) {
    var doc = fragment(html);
    var fresh = doc.getElementById(form.id);
    var value = fresh ? pressedValue(fresh) : "";
    stored[form.id] = value;
    var count = doc.getElementById("unjudged"), here = document.getElementById("unjudged");
    if (count && here) here.textContent = count.textContent;
    var li = form.closest("li.slot");
    if (li) li.classList.remove("save-failed");
    if (seq === latest[form.id]) show(form, value);
    if (!document.querySelector("li.slot.save-failed")) announce("");
  }
  function failed(form, seq, reason) {
    var li = form.closest("li.slot");
    if (li) li.classList.add("save-failed");
    if (seq === latest[form.id]) show(form, stored[form.id]);
    announce("Your rating of " + escapeText(itemName(form)) + " was not saved (" + escapeText(reason) +
      "). Please rate it again.");
  }

  function transient(status) { return status === 502 || status === 503 || status === 504; }

  function send(form, value, seq, retried) {
    var data = new FormData(form);
    data.set("label", value);
    // keepalive: a save already started still reaches the server if the page is left.
    // URL-encoded like a plain form post: the server parses it in a fraction of multipart's cost.
    return fetch(form.action, {
      method: "POST", body: new URLSearchParams(data), credentials: "same-origin", keepalive: true,
      headers: { "HX-Request": "true" },
    }).then(function (response) {
      return response.text().then(function (html) { return { response: response, html: html }; });
    }).then(function (answer) {
      var response = answer.response;
      if (response.ok) { saved(form, seq, answer.html); return; }
      if (transient(response.status) && !retried) return again(form, value, seq);
      var reason = fragment(answer.html).textContent.trim().slice(0, 200) ||
        "the server answered " + response.status;
      failed(form, seq, reason);
    }, function () {
      if (!retried) return again(form, value, seq);
      failed(form, seq, "the connection failed");
    });
  }

  // The one retry of a save that met a transient failure. Skipped when a newer rating of the
  // item is queued behind it: that one carries the participant's answer, is sent next, and
  // is the one whose failure (if it fails too) is shown.
  function again(form, value, seq) {
    if (seq !== latest[form.id]) return undefined;
    return new Promise(function (resolve) { window.setTimeout(resolve, RETRY_DELAY_MS); }).then(function () {
      return send(form, value, seq, true);
    });
  }

  function rate(form, value) {
    var id = form.id;
    if (!(id in stored)) stored[id] = pressedValue(form);
    var seq = (latest[id] || 0) + 1;
    latest[id] = seq;
    show(form, value);
    var li = form.closest("li.slot");
    if (li) li.setAttribute("aria-busy", "true");
    var done = (queues[id] || Promise.resolve()).then(function () { return send(form, value, seq); });
    queues[id] = done;
    done.then(function () {
      if (queues[id] === done) {
        delete queues[id];
        if (li) li.removeAttribute("aria-busy");
      }
    });
  }

  function pending() {
    return Object.keys(queues).map(function (id) { return queues[id]; });
  }

  // A rating whose save failed holds the page: leaving would finish the request with the old
  // (or no) rating of that item, silently dropping the one the participant gave.
  function holdForFailedSave() {
    var li = document.querySelector("li.slot.save-failed");
    if (!li) return false;
    var flash = document.getElementById("flash");
    if (flash && !flash.textContent.trim()) {
      announce("Your rating of " + escapeText(itemName(li.querySelector("form.rating") || li)) +
        " was not saved. Please rate it again before going on.");
    }
    li.focus(); li.scrollIntoView({ block: "nearest" });
    return true;
  }

  var leaving = false;  // a form leaving the page is waiting for saves or was sent: send no second one
  var sentBy = null;    // the button that sent it, disabled until the next page loads

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (form.classList.contains("rating")) {
      var button = ev.submitter;
      if (!button || button.name !== "label") return;
      ev.preventDefault();
      rate(form, button.value);
      return;
    }
    // Any other form ("Next", "which list is better?") leaves the page: it waits for the
    // ratings still queued, so none is lost and "Next" never finds an item unrated, and it
    // goes only if every one of them was saved. A second press while it waits or loads sends
    // nothing (a double "Next" would otherwise submit twice).
    if (ev.defaultPrevented) return;  // handled in place (an htmx form): the page stays
    if (leaving) { ev.preventDefault(); return; }
    var waiting = pending();
    var submitter = ev.submitter && ev.submitter.form === form ? ev.submitter : undefined;
    if (waiting.length) {
      ev.preventDefault();
      leaving = true;
      Promise.all(waiting).then(function () {
        leaving = false;
        if (!holdForFailedSave()) form.requestSubmit(submitter);
      });
      return;
    }
    if (holdForFailedSave()) { ev.preventDefault(); return; }
    leaving = true;
    // Disabled after this event: a disabled submitter would drop its value from the form data.
    sentBy = submitter || null;
    if (sentBy) window.setTimeout(function () { if (sentBy) sentBy.disabled = true; }, 0);
  });

  // Back to this page from the history cache: it can be submitted again.
  window.addEventListener("pageshow", function (ev) {
    if (!ev.persisted) return;
    leaving = false;
    if (sentBy) sentBy.disabled = false;
    sentBy = null;
  });

  window.addEventListener("beforeunload", function (ev) {
    if (pending().length) { ev.preventDefault(); ev.returnValue = ""; }  // ratings still queued
  });

  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target)) return;
    var slot = currentSlot();
    if (ev.key === "j" || ev.key === "ArrowDown") { move(slot, 1); ev.preventDefault(); return; }
    if (ev.key === "k" || ev.key === "ArrowUp") { move(slot, -1); ev.preventDefault(); return; }
    if (!slot) return;
    var button = slot.querySelector('form.rating button[data-key="' + ev.key + '"]');
    if (!button) return;
    ev.preventDefault();
    rate(button.form, button.value);
    move(slot, 1);
  });
})();

// "Copy code" buttons next to completion codes: shown only when the Clipboard API exists (it needs a
// secure context), so without it participants still see the code to select by hand.
(function () {
  "use strict";
  function setup() {
    if (!navigator.clipboard) return;
    document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        var code = document.getElementById(button.dataset.copy).textContent.trim();
        var status = button.parentNode.querySelector(".copy-status");
        navigator.clipboard.writeText(code).then(
          function () { status.textContent = "Copied."; },
          function () { status.textContent = "Could not copy: please select the code and copy it."; }
        );
      });
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup);
  else setup();
})();
