// Keyboard shortcuts for rating: with an item focused, a digit key presses the rating of that
// value, "n" presses "can't judge", j/k (or arrows) move between items. Shortcuts never fire
// while the participant types in a text field, so typing a request is never hijacked.
(function () {
  "use strict";
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
  function move(delta) {
    var all = slots(); if (!all.length) return;
    var i = all.indexOf(currentSlot());
    var next = all[Math.max(0, Math.min(all.length - 1, i < 0 ? 0 : i + delta))];
    next.focus(); next.scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target)) return;
    if (ev.key === "j" || ev.key === "ArrowDown") { move(1); ev.preventDefault(); return; }
    if (ev.key === "k" || ev.key === "ArrowUp") { move(-1); ev.preventDefault(); return; }
    var slot = currentSlot(); if (!slot) return;
    var button = slot.querySelector('button[data-key="' + ev.key + '"]');
    if (!button) return;
    ev.preventDefault();
    var id = slot.id;
    button.click();
    // After htmx swaps the rating form, keep focus on the item and move to the next one.
    document.body.addEventListener("htmx:afterSettle", function once() {
      document.body.removeEventListener("htmx:afterSettle", once);
      var again = document.getElementById(id); if (again) { again.focus(); move(1); }
    });
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
