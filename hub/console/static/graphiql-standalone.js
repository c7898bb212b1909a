// GraphiQL on /graphql: the caller adds "Authorization: Bearer <token>" in the headers tab.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("graphiql");
    var fetcher = GraphiQL.createFetcher({ url: root.getAttribute("data-endpoint") });
    var element = React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: "headers",
      headers: JSON.stringify({ Authorization: "Bearer <paste a token here>" }, null, 2),
      shouldPersistHeaders: false,
    });
    ReactDOM.createRoot(root).render(element);
  });
})();
