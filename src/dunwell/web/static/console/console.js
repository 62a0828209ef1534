// The dashboard's only script. Pages work without it; it adds live previews
// and confirmations. No framework, no build step.
"use strict";

(function () {
  const csrf = document.body ? document.body.dataset.csrf : "";

  // <button data-confirm="Stop collecting?"> asks before its form posts.
  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.dataset.confirm)) {
      event.preventDefault();
    }
  });

  // <form data-live="/dashboard/.../preview" data-live-target="preview-id">:
  // on input, post the form there (debounced) and put the answer in the target.
  function live(form) {
    const target = document.getElementById(form.dataset.liveTarget);
    if (!target) return;
    let timer = null;
    let sequence = 0;
    const refresh = function () {
      const mine = ++sequence;
      fetch(form.dataset.live, {
        method: "POST",
        body: new FormData(form),
        headers: { "X-CSRF-Token": csrf },
        credentials: "same-origin",
      })
        .then(function (response) { return response.text(); })
        .then(function (html) { if (mine === sequence) target.innerHTML = html; })
        .catch(function () { target.textContent = "Preview unavailable."; });
    };
    form.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, 250);
    });
    form.addEventListener("change", refresh);
  }

  document.querySelectorAll("form[data-live]").forEach(live);
})();
