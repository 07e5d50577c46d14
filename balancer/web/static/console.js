// The console refreshes its parts (data-part) every data-refresh seconds while open; the
// recommendations only while none of them is ticked (a selection is never thrown away).
(function () {
  "use strict";
  var seconds = parseInt(document.body.getAttribute("data-refresh"), 10) || 0;
  if (seconds < 1) { return; }
  function ticked() { return document.querySelector('[data-part="recommendations"] input[type=checkbox]:checked'); }
  function refresh() {
    fetch(window.location.pathname + window.location.search, {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { if (!r.ok || r.redirected) { throw new Error(String(r.status)); } return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-part]").forEach(function (part) {
          var name = part.getAttribute("data-part");
          if (name === "recommendations" && ticked()) { return; }
          var fresh = doc.querySelector('[data-part="' + name + '"]');
          if (fresh) { part.replaceWith(fresh); }
        });
        document.body.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function () { /* the next refresh tries again */ });
  }
  window.setInterval(refresh, seconds * 1000);
})();
