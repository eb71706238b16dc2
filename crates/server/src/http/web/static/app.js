// amika web UI: small progressive enhancements. Every feature also works without this file
// (the server handles "Add env var" and "Remove" as form submissions, and a sandbox page with a
// pending agent reply reloads itself when scripts do not run, where Cancel is a plain form post).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  reloadWhileChanging();
  setUpMessageBox();
  followReply();
  setUpEnvRows();
  setUpCredentialValue();
  keepValuesOnError();
  livePreview();
});

// The New sandbox form's preview follows the form: a moment after a change, the form is sent
// as "Preview resolution" in the background and the server's preview card replaces the one
// shown. When the form has errors, the last preview stays, marked out of date, with every
// error listed under it. Only the newest answer is shown.
function livePreview() {
  const form = document.querySelector("form.sandbox-form");
  if (!form) return;
  let timer = null;
  let asked = 0;
  const status = document.createElement("p");
  status.className = "visually-hidden";
  status.setAttribute("role", "status");
  form.append(status);
  const refresh = async () => {
    const mine = ++asked;
    const data = new FormData(form);
    data.set("action", "preview");
    let text;
    try {
      const response = await fetch(form.getAttribute("action"), {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(data),
        redirect: "manual",
      });
      if (response.type === "opaqueredirect") return;
      text = await response.text();
    } catch {
      return;
    }
    if (mine !== asked) return;
    const doc = new DOMParser().parseFromString(text, "text/html");
    const fresh = doc.getElementById("preview");
    const errors = [...doc.querySelectorAll("form.sandbox-form .field-error, form.sandbox-form .alert li, main > .alert li")]
      .map((el) => el.textContent.trim())
      .filter((t, i, all) => t && all.indexOf(t) === i);
    let shown = document.getElementById("preview");
    if (errors.length === 0 && !fresh) return;
    if (errors.length === 0) {
      const card = document.adoptNode(fresh);
      if (shown) shown.replaceWith(card);
      else form.querySelector(".actions.sticky")?.before(card);
      status.textContent = "Preview updated.";
      return;
    }
    if (!shown) return;
    shown.classList.add("stale");
    let list = shown.querySelector(".live-errors");
    if (!list) {
      list = document.createElement("div");
      list.className = "live-errors alert";
      shown.querySelector("h2")?.after(list);
    }
    const intro = document.createElement("p");
    intro.textContent = `Out of date: ${errors.length === 1 ? "1 problem" : `${errors.length} problems`} to fix first.`;
    const ul = document.createElement("ul");
    for (const e of errors) {
      const li = document.createElement("li");
      li.textContent = e;
      ul.append(li);
    }
    list.replaceChildren(intro, ul);
    status.textContent = intro.textContent;
  };
  const soon = (delay) => {
    clearTimeout(timer);
    timer = setTimeout(refresh, delay);
  };
  form.addEventListener("change", () => soon(150));
  form.addEventListener("input", (event) => {
    if (event.target.tagName !== "SELECT") soon(700);
  });
}

// The credential form: one value box, the one of the chosen type (a github credential is
// always a token). The other box is hidden and disabled, so it is not sent.
function setUpCredentialValue() {
  const type = document.getElementById("cred-type");
  const kind = document.getElementById("cred-kind");
  if (!type) return;
  const follow = () => {
    if (kind?.value === "github" && type.value !== "api_key") type.value = "api_key";
    for (const box of document.querySelectorAll("[data-value-for]")) {
      const shown = box.dataset.valueFor === type.value;
      box.hidden = !shown;
      const input = box.querySelector("input, textarea");
      if (input) input.disabled = !shown;
    }
  };
  type.addEventListener("change", follow);
  kind?.addEventListener("change", follow);
  follow();
}

// Forms marked `data-keep-values="SECTION"` are sent in the background: on success the browser
// goes where the server redirected; on an error the server's section replaces SECTION and what
// was typed or pasted (values included, which the server never writes back into a page) is put
// back from the page itself, so nothing has to be entered again.
function keepValuesOnError() {
  document.addEventListener("submit", async (event) => {
    const form = event.target.closest("form[data-keep-values]");
    if (!form || event.defaultPrevented) return;
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    const typed = [...form.elements]
      .filter((el) => el.name && el.type !== "hidden" && el.type !== "submit")
      .map((el) => ({ id: el.id, value: el.value, checked: el.checked }));
    let response;
    try {
      response = await fetch(form.getAttribute("action"), {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(new FormData(form)),
        redirect: "manual",
      });
    } catch {
      return void form.submit();
    }
    if (response.type === "opaqueredirect" || (response.status >= 300 && response.status < 400)) {
      return void location.assign(form.dataset.done || location.pathname);
    }
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    const section = document.getElementById(form.dataset.keepValues);
    const fresh = doc.getElementById(form.dataset.keepValues);
    if (!section || !fresh) {
      document.documentElement.replaceWith(document.adoptNode(doc.documentElement));
      return;
    }
    section.replaceWith(document.adoptNode(fresh));
    for (const { id, value, checked } of typed) {
      const el = id && document.getElementById(id);
      if (!el) continue;
      if (el.type === "checkbox" || el.type === "radio") el.checked = checked;
      else el.value = value;
    }
    // The server's "enter it again" no longer applies: the value is back in its box.
    for (const note of fresh.querySelectorAll(".value-not-kept")) {
      const input = fresh.querySelector(`[aria-describedby~="${note.id}"]`);
      note.remove();
      if (input) {
        input.removeAttribute("aria-invalid");
        input.setAttribute("aria-describedby", input.getAttribute("aria-describedby").replace(note.id, "").trim());
      }
    }
    setUpCredentialValue();
    (fresh.querySelector("[aria-invalid=true]") || fresh.querySelector("[role=alert]"))?.focus?.();
  });
}

// A page that follows something still changing on the server (a sandbox starting, a preset
// installing) asks to be reloaded after a few seconds; not while the user is typing in it.
function reloadWhileChanging() {
  const secs = Number(document.querySelector('meta[name="amika-reload"]')?.content);
  if (!secs) return;
  const reload = () => {
    const active = document.activeElement;
    const typing = active && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName) && active.value;
    if (typing) setTimeout(reload, secs * 1000);
    else location.reload();
  };
  setTimeout(reload, secs * 1000);
}

// The agent message box: Ctrl+Enter sends, and Send is not pressed twice nor while a reply is
// still coming (followReply enables it again).
function setUpMessageBox() {
  const form = document.getElementById("message-form");
  const send = document.getElementById("send");
  if (!form) return;
  const running = () => document.getElementById("conversation")?.dataset.inFlight === "true";
  document.getElementById("message")?.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      if (!send?.disabled) form.requestSubmit();
    }
  });
  form.addEventListener("submit", (event) => {
    if (send?.disabled) {
      event.preventDefault();
    } else if (send) {
      send.disabled = true;
      send.textContent = "Sending…";
    }
  });
  // Back to this page from the browser's cache: the button works again (unless a reply runs).
  window.addEventListener("pageshow", () => {
    if (send) {
      send.disabled = running();
      send.textContent = "Send";
    }
  });
}

// A pending reply, shown as it comes: the page follows the send's events (text as it arrives,
// tool calls as small lines, the time it has run), then swaps in the conversation as the server
// renders (and escapes) it. Where the events fail it polls that conversation instead. Either way
// the page is not reloaded, so a message being typed meanwhile is kept. What the agent sent is
// put on the page as text (textContent), never as markup. Cancel posts its form in the
// background; the events then show how the send ended.
function followReply() {
  const conversation = document.getElementById("conversation");
  const body = document.getElementById("conversation-body");
  const status = document.getElementById("conversation-status");
  const send = document.getElementById("send");
  if (!conversation || !body || conversation.dataset.inFlight !== "true") return;
  const say = (text) => {
    if (status) status.textContent = text;
  };
  if (send) send.disabled = true;
  say("The reply is on its way: Send works again once it has arrived.");
  let source = null;
  let shown = null;
  const render = (answer) => {
    // Replaced only when it changed, so a screen reader is not sent back to its start.
    if (answer.html !== shown) {
      body.innerHTML = answer.html;
      shown = answer.html;
    }
  };
  const loaded = Date.now();
  const ticking = setInterval(() => showElapsed(body, loaded), 1000);
  const finish = (text) => {
    conversation.dataset.inFlight = "false";
    if (send) send.disabled = false;
    clearInterval(ticking);
    say(text);
  };

  // Twice a second for the first 15 s (most replies), then less and less often.
  let delay = 500;
  let polls = 0;
  const poll = async () => {
    let answer;
    try {
      answer = await fetchConversation(conversation.dataset.poll);
    } catch {
      say("Could not check for the reply: reload the page to see it.");
      return;
    }
    render(answer);
    if (answer.in_flight) {
      if (++polls > 30) delay = Math.min(delay * 1.5, 5000);
      setTimeout(poll, delay);
    } else {
      finish(lastOutcome(body));
    }
  };
  // The end of the send: the conversation as the server renders it (or `fallback` where that
  // cannot be fetched), then Send again.
  const end = async (text, fallback) => {
    source?.close();
    source = null;
    try {
      const answer = await fetchConversation(conversation.dataset.poll);
      render(answer);
      if (answer.in_flight) return void setTimeout(poll, delay);
    } catch {
      fallback();
    }
    finish(text);
  };

  conversation.addEventListener("submit", async (event) => {
    const cancel = event.target.closest(".cancel-form");
    if (!cancel) return;
    event.preventDefault();
    const button = cancel.querySelector("button");
    if (button) {
      button.disabled = true;
      button.textContent = "Cancelling…";
    }
    say("Cancelling: stopping the agent…");
    try {
      const response = await fetch(cancel.action, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(new FormData(cancel)),
      });
      // The send's events (or the next poll) show how it ended.
      if (!response.ok) throw new Error(String(response.status));
    } catch {
      cancel.submit();
    }
  });

  const url = conversation.dataset.events;
  if (!url || typeof EventSource !== "function") return void setTimeout(poll, delay);
  source = new EventSource(url);
  const stream = () => body.querySelector(".bubble.agent.pending .stream");
  // A (re)connection replays the progress so far: start the shown text over.
  source.addEventListener("open", () => stream()?.replaceChildren());
  source.addEventListener("status", (event) => {
    const state = body.querySelector(".bubble.agent.pending .turn-state");
    if (state) state.textContent = JSON.parse(event.data).state;
  });
  source.addEventListener("delta", (event) => {
    const target = stream();
    if (target) showDelta(target, JSON.parse(event.data));
  });
  source.addEventListener("done", (event) => {
    const done = JSON.parse(event.data);
    const text = !done.is_error ? "The reply has arrived." : failureText(done);
    end(text, () => {
      const target = stream();
      if (target) {
        target.hidden = false;
        target.textContent = done.response;
      }
    });
  });
  // The server's `error` event carries data; the browser's own (a lost connection) does not.
  source.addEventListener("error", (event) => {
    if (typeof event.data === "string") {
      end(`The agent could not answer: ${JSON.parse(event.data).message}`, () => {});
    } else if (source?.readyState === EventSource.CLOSED) {
      // Refused (signed out, a job this server no longer knows): poll instead.
      source = null;
      setTimeout(poll, delay);
    }
  });
}

// The status line for the conversation's last reply, as the server rendered it: its failure in
// plain words, if it failed.
function lastOutcome(body) {
  const turns = body.querySelectorAll(".turn");
  const failure = turns[turns.length - 1]?.querySelector(".bubble.agent.error .failure");
  return failure ? failure.textContent : "The reply has arrived.";
}

// How a send that failed ended, in plain words for the status line (the conversation, as the
// server renders it, has the details).
function failureText(done) {
  switch (done.error_code) {
    case "agent_cancelled":
      return "Cancelled: the agent was stopped.";
    case "agent_timeout":
      return "Timed out: the agent did not answer within the server's deadline and was stopped.";
    case "agent_unreachable":
      return "The agent could not reach its service over the network.";
    case "agent_auth_failed":
      return "The agent's service refused its credential.";
    default:
      return `The agent failed: ${done.response}`;
  }
}

// One `delta` event in the pending reply: text joins the text before it; a tool call or the
// agent's thinking is a small line of its own; a tool's result is not shown.
function showDelta(stream, delta) {
  const last = stream.lastElementChild;
  if (delta.kind === "text") {
    stream.hidden = false;
    if (last && last.className === "streamed") {
      last.append(delta.text);
    } else {
      const span = document.createElement("span");
      span.className = "streamed";
      span.textContent = delta.text;
      stream.append(span);
    }
  } else if (delta.kind === "tool_call" || delta.kind === "thinking") {
    stream.hidden = false;
    const line = document.createElement("span");
    line.className = delta.kind === "tool_call" ? "tool" : "thinking";
    line.textContent = delta.kind === "tool_call" ? `→ ${delta.tool || "tool"}: ${delta.text}` : delta.text;
    stream.append(line);
  }
}

// The time the pending reply has run: what the server measured when it rendered the page, plus
// the time since.
function showElapsed(body, loaded) {
  for (const el of body.querySelectorAll(".elapsed[data-elapsed-ms]")) {
    const secs = Math.max(0, Math.floor((Number(el.dataset.elapsedMs) + Date.now() - loaded) / 1000));
    el.textContent = secs < 60 ? `${secs} s` : `${Math.floor(secs / 60)} min ${secs % 60} s`;
  }
}

// The conversation as the server renders it: `{in_flight, html}`.
async function fetchConversation(url) {
  const response = await fetch(url, { headers: { accept: "application/json" }, cache: "no-store" });
  const type = response.headers.get("content-type") || "";
  // Signed out meanwhile: the answer is the sign-in page, not JSON.
  if (!response.ok || !type.startsWith("application/json")) throw new Error(String(response.status));
  return response.json();
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
