// amika web UI: small progressive enhancements. Every feature also works without this file
// (the server handles "Add env var" and "Remove" as form submissions).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const rows = document.getElementById("env-rows");
  const template = document.getElementById("env-row-template");
  const add = document.getElementById("add-row");
  if (!rows || !template || !add) return;

  // Fresh ids for cloned rows, past any index the server rendered.
  let next = rows.querySelectorAll("[data-env-row]").length + 1000;

  add.addEventListener("click", (event) => {
    event.preventDefault();
    const html = template.innerHTML.replaceAll("__N__", String(next++));
    const holder = document.createElement("div");
    holder.innerHTML = html;
    const row = holder.firstElementChild;
    rows.appendChild(row);
    row.querySelector("input")?.focus();
  });

  rows.addEventListener("click", (event) => {
    const button = event.target.closest("[data-remove-row]");
    if (!button) return;
    event.preventDefault();
    const row = button.closest("[data-env-row]");
    const all = rows.querySelectorAll("[data-env-row]");
    if (all.length > 1) {
      row.remove();
      add.focus();
    } else {
      // Keep one (blank) row to type into.
      row.querySelector("input").value = "";
      row.querySelector("select").value = "";
      row.querySelector(".field-error")?.remove();
      row.querySelector("input").focus();
    }
  });
});
