// amika web UI: small progressive enhancements. Every feature also works without this file
// (the server handles "Add env var" and "Remove" as form submissions, and a sandbox page with a
// pending agent reply reloads itself when scripts do not run).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  setUpMessageBox();
  setUpEnvRows();
});

// The agent message box: Ctrl+Enter sends, Send is not pressed twice, and a pending reply is
// polled from the server (which renders and escapes the conversation) instead of reloading the
// page, so a message being typed meanwhile is kept.
function setUpMessageBox() {
  const form = document.getElementById("message-form");
  if (form) {
    const message = document.getElementById("message");
    message?.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    const send = document.getElementById("send");
    form.addEventListener("submit", () => {
      if (send) {
        send.disabled = true;
        send.textContent = "Sending…";
      }
    });
    // Back to this page from the browser's cache: the button works again.
    window.addEventListener("pageshow", () => {
      if (send) {
        send.disabled = false;
        send.textContent = "Send";
      }
    });
  }

  const conversation = document.getElementById("conversation");
  const body = document.getElementById("conversation-body");
  const status = document.getElementById("conversation-status");
  if (!conversation || !body || conversation.dataset.inFlight !== "true") return;
  const url = conversation.dataset.poll;
  // Twice a second for the first 15 s (most replies), then less and less often.
  let delay = 500;
  let polls = 0;
  let shown = null;
  const poll = async () => {
    let answer;
    try {
      const response = await fetch(url, { headers: { accept: "application/json" }, cache: "no-store" });
      const type = response.headers.get("content-type") || "";
      // Signed out meanwhile: the answer is the sign-in page, not JSON.
      if (!response.ok || !type.startsWith("application/json")) throw new Error(String(response.status));
      answer = await response.json();
    } catch {
      if (status) status.textContent = "Could not check for the reply: reload the page to see it.";
      return;
    }
    // Replaced only when it changed, so a screen reader is not sent back to its start.
    if (answer.html !== shown) {
      body.innerHTML = answer.html;
      shown = answer.html;
    }
    if (answer.in_flight) {
      if (++polls > 30) delay = Math.min(delay * 1.5, 5000);
      setTimeout(poll, delay);
    } else {
      conversation.dataset.inFlight = "false";
      if (status) status.textContent = "The reply has arrived.";
    }
  };
  setTimeout(poll, delay);
}

function setUpEnvRows() {
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
}
