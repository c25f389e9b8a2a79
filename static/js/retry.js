// When the server is briefly unavailable (a 503 during a database restart, or a dropped
// connection), htmx does not swap the response and the click would be silently lost. For
// idempotent writes (elements inside [data-retry-once], e.g. a rating: sending the same label
// twice stores it once) the request is sent once more after a short pause; if that fails too,
// or for any other write, the page says plainly that it was not saved.
(function () {
  "use strict";
  var RETRY_DELAY_MS = 1500;
  var NOT_SAVED = "Your answer could not be saved just now (the server is busy). Please click it again.";

  function showNotSaved() {
    var flash = document.getElementById("flash");
    if (!flash) { window.alert(NOT_SAVED); return; }
    var p = document.createElement("p");
    p.className = "error not-saved";
    p.textContent = NOT_SAVED;
    flash.replaceChildren(p);
  }

  function failed(evt) {
    var cfg = evt.detail.requestConfig;
    if (!cfg || cfg.verb === "get") return; // polls repeat by themselves
    var source = evt.detail.elt || cfg.elt;
    var retried = cfg.headers && cfg.headers["X-Retry"];
    if (!retried && source && source.closest && source.closest("[data-retry-once]") && source.isConnected) {
      var values = {};
      cfg.formData.forEach(function (value, key) { values[key] = value; });
      window.setTimeout(function () {
        htmx.ajax(cfg.verb, cfg.path, {
          source: source, target: cfg.target, swap: "outerHTML", values: values, headers: { "X-Retry": "1" }
        });
      }, RETRY_DELAY_MS);
      return;
    }
    showNotSaved();
  }

  document.addEventListener("htmx:responseError", failed);
  document.addEventListener("htmx:sendError", failed);
})();
