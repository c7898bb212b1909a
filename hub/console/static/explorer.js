// The console's explorer: GraphiQL on the session (CSRF header), as the chosen organization.
(function () {
  "use strict";
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }
  document.addEventListener("DOMContentLoaded", function () {
    var container = document.getElementById("explorer");
    if (!container || typeof GraphiQL === "undefined") return;
    var as = container.getAttribute("data-as") || "";
    var url = container.getAttribute("data-endpoint") + (as ? "?as=" + encodeURIComponent(as) : "");
    var fetcher = GraphiQL.createFetcher({ url: url, headers: { "X-CSRF-Token": csrfToken() } });
    var select = document.getElementById("explorer-as");
    if (select) {
      // Switching reloads the page: a new schema, a new GraphiQL (the form works without JS too).
      select.addEventListener("change", function () { select.form.submit(); });
    }
    // ?query=... opens the explorer on that query (links from docs, tests).
    var given = new URLSearchParams(window.location.search).get("query");
    ReactDOM.createRoot(container).render(
      React.createElement(GraphiQL, {
        fetcher: fetcher,
        query: given || undefined,
        defaultQuery: "{\n  customers(first: 5) {\n    totalCount\n    edges { node { id name email city } }\n  }\n}\n",
        shouldPersistHeaders: false,
      })
    );
  });
})();
