/* pitstop web UI: confirmation dialogs, the wizard's Next/override, Back links and log
   autoscroll. Everything else is plain HTML forms and htmx; the Content-Security-Policy
   allows no inline script, so behaviour lives here. */
(function () {
  "use strict";

  function confirmDialog(message, onConfirm) {
    var dlg = document.getElementById("confirm-dialog");
    if (!dlg) {
      dlg = document.createElement("dialog");
      dlg.id = "confirm-dialog";
      dlg.setAttribute("aria-labelledby", "confirm-text");
      dlg.innerHTML = '<p id="confirm-text"></p><div class="dialog-actions">' +
        '<button type="button" class="btn" data-close>Cancel</button>' +
        '<button type="button" class="btn btn-primary" id="confirm-ok">Confirm</button></div>';
      document.body.appendChild(dlg);
    }
    dlg.querySelector("#confirm-text").textContent = message;
    dlg.querySelector("#confirm-ok").onclick = function () { dlg.close(); onConfirm(); };
    dlg.showModal();
    dlg.querySelector("#confirm-ok").focus();
  }

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.confirm || form.dataset.confirmed) return;
    ev.preventDefault();
    confirmDialog(form.dataset.confirm, function () {
      form.dataset.confirmed = "1";
      form.requestSubmit();
    });
  });

  document.addEventListener("click", function (ev) {
    var t = ev.target instanceof Element ? ev.target : null;
    if (!t) return;
    var opener = t.closest("[data-dialog]");
    if (opener && !opener.disabled) {
      var dlg = document.getElementById(opener.dataset.dialog);
      if (dlg) { dlg.showModal(); }
    }
    if (t.closest("[data-back]")) {
      ev.preventDefault();
      history.back();
    }
    if (t.closest("[data-close]")) {
      var d = t.closest("dialog");
      if (d) d.close();
    }
  });

  // The admin override: ticking the box enables Next (the dialog then says it is an override).
  document.addEventListener("change", function (ev) {
    var box = ev.target;
    if (!(box instanceof HTMLInputElement) || !box.dataset.enables) return;
    var btn = document.getElementById(box.dataset.enables);
    if (btn) btn.disabled = !box.checked;
  });

  // Keep the newest log line in view unless the reader has scrolled up.
  document.addEventListener("htmx:sseBeforeMessage", function (ev) {
    var log = ev.target;
    if (log && log.dataset && log.dataset.autoscroll !== undefined) {
      log.dataset.stick = (log.scrollHeight - log.scrollTop - log.clientHeight < 24) ? "1" : "";
    }
  });
  document.addEventListener("htmx:sseMessage", function (ev) {
    var log = ev.target;
    if (log && log.dataset && log.dataset.autoscroll !== undefined && log.dataset.stick) {
      log.scrollTop = log.scrollHeight;
    }
  });
  // A live stream that breaks may mean the session ended (its token revoked or expired): if
  // the page itself now sends the reader to the sign-in form, go there.
  var checking = false;
  document.addEventListener("htmx:sseError", function () {
    if (checking) return;
    checking = true;
    fetch(location.href, { redirect: "manual", credentials: "same-origin" })
      .then(function (r) {
        if (r.type === "opaqueredirect" || r.status === 401) location.reload();
      })
      .catch(function () {})
      .then(function () { checking = false; });
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-autoscroll]").forEach(function (log) {
      log.scrollTop = log.scrollHeight;
      log.dataset.stick = "1";
    });
  });
})();
