// Model card: follow evaluation progress over server-sent events. Without JS the page
// still shows each run's state as of loading; with it, progress bars move and, when a
// run starts or finishes, the evaluation, chart and bias sections are refreshed in place.
(function () {
  "use strict";
  var card = document.querySelector("article.card[data-progress]");
  if (!card || !window.EventSource) { return; }
  var known = {};
  document.querySelectorAll("tr[data-run]").forEach(function (row) {
    known[row.getAttribute("data-run")] = row.querySelector(".run-status").textContent.trim();
  });
  var refreshing = false;

  function refresh() {
    if (refreshing) { return; }
    refreshing = true;
    fetch(window.location.pathname, { headers: { "Accept": "text/html" } })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        ["evaluations", "charts", "transfer", "bias"].forEach(function (id) {
          var fresh = doc.getElementById(id), old = document.getElementById(id);
          if (fresh && old) { old.replaceWith(document.importNode(fresh, true)); }
        });
        document.querySelectorAll("tr[data-run]").forEach(function (row) {
          known[row.getAttribute("data-run")] = row.querySelector(".run-status").textContent.trim();
        });
      })
      .finally(function () { refreshing = false; });
  }

  var source = new EventSource(card.getAttribute("data-progress"));
  source.addEventListener("runs", function (event) {
    var runs = JSON.parse(event.data).runs, stale = false;
    runs.forEach(function (run) {
      var id = String(run.id), row = document.querySelector('tr[data-run="' + id + '"]');
      if (!row || known[id] !== run.status) { stale = true; return; }
      var bar = row.querySelector("progress"), pct = row.querySelector(".run-pct");
      var value = Math.round(run.progress * 100);
      if (bar) { bar.value = run.progress; bar.textContent = value + "%"; }
      if (pct) { pct.textContent = value + "%"; }
    });
    if (stale) { refresh(); }
  });
})();
