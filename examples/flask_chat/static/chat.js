// The chat page: sends the whole conversation with each request and reads the answer as
// server-sent events from a streamed fetch body. Stop aborts the fetch; the server then
// closes its body, which cancels the upstream stream.
"use strict";

const log = document.getElementById("log");
const form = document.getElementById("form");
const prompt = document.getElementById("prompt");
const sendButton = document.getElementById("send");
const stopButton = document.getElementById("stop");
const status = document.getElementById("status");
const conversation = [];  // [{role, content}], sent with every request: the server keeps no state
let controller = null;
let epoch = 0;  // bumped by "New chat", so a turn still ending cannot write into the new history

// A WHATWG-style event-stream parser fed with decoded text; calls onEvent(name, data).
function sseParser(onEvent) {
  let buffer = "";
  let name = "";
  let data = [];
  return function feed(text) {
    buffer += text;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop();
    for (const line of lines) {
      if (line === "") {
        if (data.length) onEvent(name || "message", data.join("\n"));
        name = "";
        data = [];
      } else if (line[0] !== ":") {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value[0] === " ") value = value.slice(1);
        if (field === "event") name = value;
        else if (field === "data") data.push(value);
      }
    }
  };
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

async function send(text) {
  const userBubble = addBubble("user", text);
  conversation.push({ role: "user", content: text });
  const bubble = addBubble("assistant", "");
  const answer = bubble.querySelector(".text");
  bubble.dataset.state = "streaming";
  setStatus("streaming", "Streaming…");
  setBusy(true);
  controller = new AbortController();
  const turn = epoch;
  let outcome = null;
  let failure = null;

  function onEvent(name, raw) {
    const data = JSON.parse(raw);
    if (name === "content") {
      answer.textContent += data.text;
      log.scrollTop = log.scrollHeight;
    } else if (name === "tool_call") {
      note(bubble, `called ${data.name}`);
    } else if (name === "done") {
      outcome = data;
    } else if (name === "error") {
      failure = `${data.error}: ${data.message}`;
    }
  }

  try {
    const response = await fetch("chat", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify({ messages: conversation }),
      signal: controller.signal,
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error(body.error || `HTTP ${response.status}`);
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    const feed = sseParser(onEvent);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      feed(value);
    }
    if (!outcome && !failure) failure = "the connection closed before the answer was complete";
  } catch (err) {
    if (!controller.signal.aborted) failure = err.message || String(err);
  }

  if (epoch !== turn) {
    // "New chat" was pressed meanwhile: this turn belongs to a conversation that is gone.
  } else if (outcome) {
    conversation.push({ role: "assistant", content: outcome.text });
    bubble.dataset.state = "done";
    const usage = outcome.usage ? `${outcome.usage.output_tokens} tokens in ` : "";
    setStatus("done", `Done: ${usage}${outcome.duration.toFixed(2)} s (${outcome.finish_reason}).`);
  } else if (controller.signal.aborted) {
    bubble.dataset.state = "stopped";
    note(bubble, "Stopped.");
    if (answer.textContent) {
      conversation.push({ role: "assistant", content: answer.textContent });
    } else {
      conversation.pop();  // nothing came back: forget the question
      userBubble.classList.add("dropped");
      bubble.classList.add("dropped");
    }
    setStatus("stopped", "Stopped.");
  } else {
    conversation.pop();  // a failed turn is left out of the conversation
    bubble.dataset.state = "error";
    userBubble.classList.add("dropped");
    bubble.classList.add("dropped");
    note(bubble, failure);
    setStatus("error", `Error: ${failure}`);
  }
  controller = null;
  setBusy(false);
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = prompt.value.trim();
  if (!text || controller) return;
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
  if (controller) controller.abort();
});

document.getElementById("reset").addEventListener("click", () => {
  if (controller) controller.abort();
  epoch += 1;
  conversation.length = 0;
  log.replaceChildren();
  setStatus("idle", "Ready.");
});

prompt.focus();
