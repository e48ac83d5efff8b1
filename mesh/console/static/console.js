// meshlab console: every panel is HTML rendered by the console; this swaps fresh copies in
// every two seconds (no reload, no framework) and opens a trace's waterfall on click.
(function () {
  "use strict";
  var duration = document.getElementById("duration");
  var status = document.getElementById("status");
  var waterfall = document.getElementById("waterfall");
  var panels = Array.prototype.slice.call(document.querySelectorAll("[data-fragment]"));
  var openTrace = null;

  function fetchText(url) {
    return fetch(url, { cache: "no-store" }).then(function (response) {
      if (!response.ok && response.status !== 404) {
        throw new Error(url + " answered " + response.status);
      }
      return response.text();
    });
  }

  function refresh(panel) {
    var url = panel.getAttribute("data-fragment");
    if (panel.id === "graph") {
      url += "?duration=" + encodeURIComponent(duration.value);
    }
    return fetchText(url).then(function (html) {
      if (panel.getAttribute("data-html") !== html) {
        panel.innerHTML = html;
        panel.setAttribute("data-html", html);
      }
    });
  }

  function tick() {
    return Promise.all(panels.map(refresh)).then(
      function () {
        status.textContent = "✓ updated " + new Date().toLocaleTimeString();
        status.className = "ok";
      },
      function (error) {
        status.textContent = "✗ console not answering: " + error.message;
        status.className = "bad";
      }
    );
  }

  function showTrace(traceId) {
    openTrace = traceId;
    return fetchText("/fragment/trace/" + encodeURIComponent(traceId)).then(function (html) {
      if (openTrace === traceId) {
        waterfall.innerHTML = html;
        waterfall.scrollIntoView({ block: "nearest" });
      }
    });
  }

  function onPick(event) {
    var row = event.target.closest("[data-trace-id]");
    if (row && (event.type === "click" || event.key === "Enter")) {
      showTrace(row.getAttribute("data-trace-id"));
    }
  }

  var traces = document.getElementById("traces");
  traces.addEventListener("click", onPick);
  traces.addEventListener("keydown", onPick);
  duration.addEventListener("change", tick);
  tick();
  setInterval(tick, 2000);
})();
