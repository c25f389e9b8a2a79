// When the server is briefly unavailable (a 503 during a database restart, or a dropped
// connection), htmx does not swap the response and a write would be silently lost. For the
// htmx writes left (picking items during onboarding: a toggle, so it is not resent blindly)
// the page says plainly that the click was not saved, so the participant clicks again.
// Ratings do not go through htmx: study.js saves them, retrying once, and reports failures itself.
(function () {
  "use strict";
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
    showNotSaved();
  }

  document.addEventListener("htmx:responseError", failed);
  document.addEventListener("htmx:sendError", failed);
})();
