// GraphiQL's CodeMirror editors are textareas without a label: name them for screen
// readers (axe-core: "label"), as GraphiQL renders and re-renders them.
(function () {
  "use strict";
  var NAMES = [
    [".graphiql-query-editor", "GraphQL query editor"],
    [".graphiql-editor-tool .graphiql-editor:nth-child(1)", "Variables (JSON)"],
    [".graphiql-editor-tool .graphiql-editor:nth-child(2)", "Headers (JSON)"],
    [".graphiql-response", "Response"],
  ];
  function label(root) {
    root.querySelectorAll("textarea:not([aria-label])").forEach(function (area) {
      var name = "GraphiQL editor";
      for (var i = 0; i < NAMES.length; i++) {
        if (area.closest(NAMES[i][0])) { name = NAMES[i][1]; break; }
      }
      area.setAttribute("aria-label", name);
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("explorer") || document.getElementById("graphiql");
    if (!root) return;
    new MutationObserver(function () { label(root); }).observe(root, { childList: true, subtree: true });
  });
})();
