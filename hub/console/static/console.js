// Partner Hub console: small enhancements over server-rendered pages (every action
// also works as a plain form post where it matters). No inline scripts: the CSP forbids them.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // Every htmx request carries the session's CSRF token in a header.
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrfToken();
  });

  // A refused htmx request (expired session, missing role, bad CSRF token) is not
  // swapped in by htmx: say so where the user looks.
  document.addEventListener("htmx:responseError", function (event) {
    var main = document.getElementById("main");
    if (!main) return;
    var box = document.getElementById("request-error");
    if (!box) {
      box = document.createElement("p");
      box.id = "request-error";
      box.className = "flash bad";
      box.setAttribute("role", "alert");
      main.insertBefore(box, main.firstChild);
    }
    var status = event.detail.xhr ? event.detail.xhr.status : 0;
    box.textContent = status === 403
      ? "Refused: your roles do not allow this, or the page is stale (reload it)."
      : "The request failed (" + status + "); reload the page and try again.";
  });

  // --- the policy editor: a textarea with line numbers and problem markers -------------
  function lineStarts(text) {
    var starts = [0];
    for (var i = 0; i < text.length; i++) {
      if (text.charCodeAt(i) === 10) starts.push(i + 1);
    }
    return starts;
  }

  function renderGutter(editor) {
    var area = editor.querySelector("textarea");
    var gutter = editor.querySelector(".gutter");
    if (!area || !gutter) return;
    var count = lineStarts(area.value).length;
    var marked = {};
    document.querySelectorAll("#problems .goto").forEach(function (b) {
      marked[b.getAttribute("data-line")] = true;
    });
    var lines = [];
    for (var n = 1; n <= count; n++) {
      lines.push(marked[n] ? n + " \u25CF" : String(n));
    }
    gutter.textContent = lines.join("\n");
    gutter.scrollTop = area.scrollTop;
  }

  function setupEditor(editor) {
    var area = editor.querySelector("textarea");
    if (!area || editor.getAttribute("data-ready")) return;
    editor.setAttribute("data-ready", "1");
    var gutter = document.createElement("pre");
    gutter.className = "gutter";
    gutter.setAttribute("aria-hidden", "true");
    editor.insertBefore(gutter, area);
    area.addEventListener("input", function () { renderGutter(editor); });
    area.addEventListener("scroll", function () { gutter.scrollTop = area.scrollTop; });
    area.addEventListener("keydown", function (event) {
      // Tab indents by two spaces; Escape then Tab leaves the editor (keyboard users).
      if (event.key === "Tab" && !event.shiftKey && !area.getAttribute("data-escaped")) {
        event.preventDefault();
        var start = area.selectionStart;
        area.setRangeText("  ", start, area.selectionEnd, "end");
        renderGutter(editor);
      } else if (event.key === "Escape") {
        area.setAttribute("data-escaped", "1");
      } else {
        area.removeAttribute("data-escaped");
      }
    });
    renderGutter(editor);
  }

  function gotoLine(line, column) {
    var area = document.querySelector(".editor textarea");
    if (!area) return;
    var starts = lineStarts(area.value);
    var index = Math.min(line, starts.length) - 1;
    var start = starts[index] + Math.max(column - 1, 0);
    var end = index + 1 < starts.length ? starts[index + 1] - 1 : area.value.length;
    area.focus();
    area.setSelectionRange(Math.min(start, end), end);
    var lineHeight = parseFloat(getComputedStyle(area).lineHeight) || 18;
    area.scrollTop = Math.max(0, (index - 3) * lineHeight);
  }

  document.addEventListener("click", function (event) {
    var target = event.target.closest ? event.target.closest(".goto") : null;
    if (target) {
      gotoLine(parseInt(target.getAttribute("data-line"), 10),
               parseInt(target.getAttribute("data-column"), 10));
    }
  });

  // Drafts survive leaving the page: kept in this browser (localStorage) until published.
  var DRAFT_KEY = "partner-hub-console-policy-draft";

  function setupDraft() {
    var area = document.getElementById("policy-source");
    var form = document.getElementById("draft-form");
    if (!area || !form || area.getAttribute("data-draft-ready")) return;
    area.setAttribute("data-draft-ready", "1");
    var saved = null;
    try { saved = window.localStorage.getItem(DRAFT_KEY); } catch (e) { saved = null; }
    if (saved && saved !== area.value && !form.hasAttribute("data-submitted")) {
      var offer = document.createElement("p");
      offer.className = "flash";
      offer.setAttribute("role", "status");
      var restore = document.createElement("button");
      restore.type = "button";
      restore.textContent = "Restore your unpublished draft";
      restore.addEventListener("click", function () {
        area.value = saved;
        area.dispatchEvent(new Event("input"));
        offer.remove();
        area.focus();
      });
      offer.appendChild(document.createTextNode("You left a draft unpublished. "));
      offer.appendChild(restore);
      form.parentNode.insertBefore(offer, form);
    }
    area.addEventListener("input", function () {
      try { window.localStorage.setItem(DRAFT_KEY, area.value); } catch (e) { /* full or off */ }
    });
  }

  // A version published: the draft is done.
  document.addEventListener("DOMContentLoaded", function () {
    if (document.querySelector("[data-published]")) {
      try { window.localStorage.removeItem(DRAFT_KEY); } catch (e) { /* off */ }
    }
  });

  function setupAll() {
    setupDraft();
    document.querySelectorAll(".editor").forEach(setupEditor);
    document.querySelectorAll(".editor").forEach(renderGutter);
  }
  document.addEventListener("DOMContentLoaded", setupAll);
  document.addEventListener("htmx:afterSettle", setupAll);

  // --- focus, for keyboard and screen reader users ------------------------------------
  // After a form post the page's outcome (a message, the one-time secret, the view-as
  // result) is marked data-focus: focus goes there instead of the top of the page.
  document.addEventListener("DOMContentLoaded", function () {
    var target = document.querySelector("main [data-focus]");
    if (!target) return;
    if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
    target.focus();
  });

  // After an htmx swap (Validate, Preview the impact) focus moves to the swapped region's
  // heading (tabindex=-1), so Tab continues from the result (the problems' buttons). Only
  // when focus is still on the button that asked, or was lost with the swap.
  var requester = null;
  document.addEventListener("htmx:beforeRequest", function (event) {
    requester = event.detail.elt;
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    var region = event.target;
    var active = document.activeElement;
    if (!requester || !region || !region.querySelector) return;
    if (active !== requester && active !== document.body && active !== null) return;
    var heading = region.matches('[tabindex="-1"]')
      ? region : region.querySelector('[tabindex="-1"]');
    if (heading) {
      requester = null;
      heading.focus();
    }
  });

  // Forms that change something important ask first (data-confirm), without inline script.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });
})();
