// The chat page: POST /chat starts an answer on the server and returns its id; an EventSource
// follows it at /chat/<id>/events. The browser reconnects by itself with Last-Event-ID. The
// conversation is kept on the server (GET /history draws it); only the running answer's id and
// question live in localStorage, so a reload (or a second tab) picks the same answer up again.
// Stop asks the server to cancel the answer; every page following it then receives the final
// "error" event (StreamCancelled), and the server keeps the answer as far as it got.
"use strict";

const STORE = "llmstreamer-chat";
const log = document.getElementById("log");
const form = document.getElementById("form");
const prompt = document.getElementById("prompt");
const sendButton = document.getElementById("send");
const stopButton = document.getElementById("stop");
const status = document.getElementById("status");
const conversation = [];  // [{role, content}]: the page's copy of the stored conversation
let active = load();  // {id, session, question, after} of the answer being generated, or null
let source = null;  // the EventSource following it
let leaving = false;  // the page is being unloaded: its closing connection is no failure

function load() {
  try {
    const value = JSON.parse(localStorage.getItem(STORE));
    if (value && value.active && typeof value.active.id === "string") return value.active;
  } catch (err) {
    // a damaged entry: start afresh
  }
  return null;
}

function save() {
  localStorage.setItem(STORE, JSON.stringify({ active }));
}

async function fetchHistory() {
  const response = await fetch("history");
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.json();
}

// After a failed answer, take the server's word for what was kept.
async function syncHistory() {
  try {
    const stored = await fetchHistory();
    conversation.splice(0, conversation.length, ...stored.messages);
  } catch (err) {
    // keep the page's copy
  }
}

function setStatus(state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

function addBubble(role, text) {
  const hint = document.getElementById("hint");
  if (hint) hint.remove();
  const bubble = document.createElement("div");
  bubble.className = `message ${role}`;
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  bubble.appendChild(body);
  log.appendChild(bubble);
  log.scrollTop = log.scrollHeight;
  return bubble;
}

function note(bubble, text) {
  let el = bubble.querySelector(".note");
  if (!el) {
    el = document.createElement("span");
    el.className = "note";
    bubble.appendChild(el);
  }
  el.textContent = text;
}

function setBusy(busy) {
  sendButton.disabled = busy;
  stopButton.disabled = !busy;
  prompt.disabled = busy;
  if (!busy) prompt.focus();
}

// The answer ended one way or another: record it, close the EventSource, free the form.
// outcome.started: the server took the turn (it keeps the question and what was written).
function settle(bubble, userBubble, outcome) {
  if (source) source.close();
  source = null;
  const answer = bubble.querySelector(".text").textContent;
  if (outcome.state === "done") {
    conversation.push({ role: "assistant", content: outcome.data.text });
    const usage = outcome.data.usage ? `${outcome.data.usage.output_tokens} tokens in ` : "";
    setStatus("done", `Done: ${usage}${outcome.data.duration.toFixed(2)} s (${outcome.data.finish_reason}).`);
  } else if (outcome.state === "stopped" && answer) {
    conversation.push({ role: "assistant", content: answer });
    note(bubble, "Stopped.");
    setStatus("stopped", "Stopped.");
  } else if (outcome.started) {
    if (answer) conversation.push({ role: "assistant", content: answer });
    else bubble.classList.add("dropped");
    note(bubble, outcome.message);
    setStatus(outcome.state, outcome.state === "stopped" ? "Stopped." : `Error: ${outcome.message}`);
    syncHistory();
  } else {
    conversation.pop();  // the server refused the turn: it is not in the conversation
    userBubble.classList.add("dropped");
    bubble.classList.add("dropped");
    note(bubble, outcome.message);
    setStatus(outcome.state, `Error: ${outcome.message}`);
  }
  bubble.dataset.state = outcome.state;
  active = null;
  save();
  setBusy(false);
}

// Follow answer `id` from its first event (the server replays what was already written).
function follow(id, bubble, userBubble) {
  const answer = bubble.querySelector(".text");
  answer.textContent = "";
  bubble.dataset.state = "streaming";
  setBusy(true);
  setStatus("streaming", "Streaming…");
  source = new EventSource(`chat/${encodeURIComponent(id)}/events`);
  const mine = source;
  source.addEventListener("open", () => setStatus("streaming", "Streaming…"));
  source.addEventListener("content", (event) => {
    answer.textContent += JSON.parse(event.data).text;
    log.scrollTop = log.scrollHeight;
  });
  source.addEventListener("tool_call", (event) => note(bubble, `called ${JSON.parse(event.data).name}`));
  source.addEventListener("done", (event) => settle(bubble, userBubble, { state: "done", data: JSON.parse(event.data) }));
  source.addEventListener("error", (event) => {
    if (source !== mine || leaving) return;
    if (event.data !== undefined) {  // the answer's own "error" event: it is over
      const data = JSON.parse(event.data);
      const state = data.error === "StreamCancelled" ? "stopped" : "error";
      settle(bubble, userBubble, { state, started: true, message: state === "stopped" ? "Stopped." : `${data.error}: ${data.message}` });
    } else if (mine.readyState === EventSource.CLOSED) {  // the server refused (gone, or Redis down)
      settle(bubble, userBubble, { state: "error", started: true, message: "the answer is no longer available" });
    } else {
      setStatus("reconnecting", "Connection lost; reconnecting…");
    }
  });
}

async function send(text) {
  await ready;  // the stored conversation is drawn first
  const userBubble = addBubble("user", text);
  conversation.push({ role: "user", content: text });
  const bubble = addBubble("assistant", "");
  bubble.dataset.state = "streaming";
  setBusy(true);
  setStatus("streaming", "Starting…");
  try {
    const response = await fetch("chat", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ message: text }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
    active = { id: body.id, session: body.session, question: text, after: conversation.length - 1 };
    save();
    follow(body.id, bubble, userBubble);
  } catch (err) {
    settle(bubble, userBubble, { state: "error", message: err.message || String(err) });
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = prompt.value.trim();
  if (!text || active) return;
  prompt.value = "";
  send(text);
});

prompt.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    form.requestSubmit();
  }
});

stopButton.addEventListener("click", () => {
  if (active) fetch(`chat/${encodeURIComponent(active.id)}/cancel`, { method: "POST" });
});

document.getElementById("reset").addEventListener("click", async () => {
  if (source) source.close();
  source = null;
  if (active) fetch(`chat/${encodeURIComponent(active.id)}/cancel`, { method: "POST" });
  active = null;
  conversation.length = 0;
  save();
  log.replaceChildren();
  sendButton.disabled = true;
  // Forget the stored conversation's cookie first, so the next message starts a new one.
  await fetch("history", { method: "DELETE" }).catch(() => null);
  setBusy(false);
  setStatus("idle", "Ready.");
});

// A reload closes the EventSource; the answer goes on, and the next page follows it again.
function leave() {
  leaving = true;
  if (source) source.close();
}
window.addEventListener("beforeunload", leave);
window.addEventListener("pagehide", leave);
window.addEventListener("pageshow", () => { leaving = false; });

// Draw the stored conversation; resume the answer that was being written, if it is not stored yet.
async function start() {
  let stored;
  try {
    stored = await fetchHistory();
  } catch (err) {
    setStatus("error", `Error: could not load the conversation (${err.message || err})`);
    return;
  }
  for (const message of stored.messages) {
    const bubble = addBubble(message.role, message.content);
    if (message.role === "assistant") bubble.dataset.state = "done";
    conversation.push(message);
  }
  if (active && active.session === stored.session && active.after === stored.messages.length) {
    const userBubble = addBubble("user", active.question);
    conversation.push({ role: "user", content: active.question });
    follow(active.id, addBubble("assistant", ""), userBubble);
  } else if (active) {
    active = null;  // it has ended and is stored, or belongs to another conversation
    save();
  }
}
const ready = start();
prompt.focus();
