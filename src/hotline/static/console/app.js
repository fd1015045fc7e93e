// hotline reference console: sign in, follow /api/ws, show the caller, register the call.
// Everything here uses the public API only; copy what you need into your own console.
"use strict";

const state = { token: null, user: null, ws: null, lastId: null, call: null, retry: 500 };
const $ = (id) => document.getElementById(id);

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new Error((data && data.message) || `${method} ${path}: ${response.status}`);
  return data;
}

function notice(text, isError) {
  $("notice").textContent = text;
  $("notice").className = isError ? "notice error" : "notice";
}

function li(text, className) {
  const item = document.createElement("li");
  item.textContent = text;
  if (className) item.className = className;
  return item;
}

// --- sign in --------------------------------------------------------------------------------------------------

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("login-error").textContent = "";
  const response = await fetch("/api/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: $("username").value, password: $("password").value }),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) { $("login-error").textContent = data.message || "Sign-in failed."; return; }
  $("password").value = "";
  state.token = data.access_token;
  state.user = data.user;
  $("login-view").hidden = true;
  $("console-view").hidden = false;
  $("me").textContent = `${data.user.full_name || data.user.username} (${data.user.role})`;
  connect();
  await Promise.all([loadTopics(), loadQueue(), loadScript(null), loadCurrentCall()]).catch((e) => notice(e.message, true));
});

$("logout").addEventListener("click", async () => {
  await api("POST", "/api/auth/logout").catch(() => {});
  if (state.ws) state.ws.close();
  location.reload();
});

// --- presence (the routing API) -------------------------------------------------------------------------------

document.querySelectorAll(".presence-buttons button").forEach((button) => {
  button.addEventListener("click", async () => {
    const body = { state: button.dataset.state };
    if (button.dataset.reason) body.reason = button.dataset.reason;
    try {
      await api("POST", `/api/operators/${state.user.id}/presence`, body);
      notice(`Presence: ${body.state}${body.reason ? " (" + body.reason + ")" : ""}`);
    } catch (e) { notice(e.message, true); }
  });
});

function showPresence(value, reason) {
  $("presence").textContent = reason && value !== reason ? `${value} (${reason})` : value;
  $("presence").className = `badge ${value}`;
}

// --- push -----------------------------------------------------------------------------------------------------

function connect() {
  // The token travels as a subprotocol (browsers cannot set headers), never in the URL.
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const since = state.lastId === null ? "" : `?since=${state.lastId}`;
  const ws = new WebSocket(`${scheme}://${location.host}/api/ws${since}`, ["bearer", state.token]);
  state.ws = ws;
  ws.onopen = () => { $("link").textContent = "push: live"; state.retry = 500; };
  ws.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.type === "ready") { if (state.lastId === null) state.lastId = event.last_id; return; }
    state.lastId = event.id;
    handle(event);
  };
  ws.onclose = (closed) => {
    $("link").textContent = `push: reconnecting (${closed.code})`;
    if (closed.code === 4401) { notice("Signed out: sign in again.", true); return; }
    setTimeout(connect, state.retry);
    state.retry = Math.min(state.retry * 2, 10000);
  };
}

function handle(event) {
  const data = event.data;
  switch (event.type) {
    case "call.offered": screenPop(data, "ringing"); break;
    case "call.answered": if (data.operator === state.user.username) screenPop(data, "talking"); break;
    case "call.ended": if (state.call && state.call.linkedid === data.linkedid) $("pop-state").textContent = `ended: ${data.outcome}`; break;
    case "queue.changed": loadQueue().catch(() => {}); break;
    case "presence.changed": if (data.username === state.user.username) showPresence(data.state, data.reason); break;
    case "registration.required": prepareRegistration(data.call_id, data.caller_number); break;
    case "resync.required": loadQueue().catch(() => {}); loadCurrentCall().catch(() => {}); break;
  }
}

// --- caller panel -------------------------------------------------------------------------------------------------

async function screenPop(call, how) {
  state.call = call;
  $("pop-empty").hidden = true;
  $("pop-call").hidden = false;
  $("pop").classList.toggle("ringing", how === "ringing");
  $("pop-name").textContent = call.caller_name || "Unknown caller";
  $("pop-number").textContent = call.caller_number || "";
  $("pop-state").textContent = `${how} on line ${call.line_id}`;
  loadScript(call.line_id).catch(() => {});
  if (call.call_id) prepareRegistration(call.call_id, call.caller_number);
  const list = $("pop-history");
  list.replaceChildren();
  if (!call.caller_number) return;
  const params = new URLSearchParams({ caller_number: call.caller_number });
  if (call.call_id) params.set("call_id", call.call_id);
  const history = await api("GET", `/api/console/history?${params}`);
  if (!history.length) list.append(li("First call from this number."));
  for (const h of history) {
    const r = h.registration;
    list.append(li(`${h.call.arrived_at.slice(0, 16).replace("T", " ")} ${h.call.outcome}` +
      (r ? ` — ${h.topic || "no topic"}: ${r.summary} (${r.resolution})` : "")));
  }
}

async function loadCurrentCall() {
  const current = await api("GET", "/api/console/current-call");
  if (current.state === "none") return;
  await screenPop({ ...current.call, call_id: current.call.id }, current.state);
}

$("transfer-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!state.call || !state.call.call_id) return;
  try {
    const result = await api("POST", `/api/calls/${state.call.call_id}/transfer`, { target: $("transfer-target").value });
    notice(`Transferred to ${result.target}.`);
  } catch (e) { notice(e.message, true); }
});

// --- registration -------------------------------------------------------------------------------------------------

async function loadTopics() {
  const [topics, contacts] = await Promise.all([api("GET", "/api/console/topics"), api("GET", "/api/console/directory")]);
  for (const t of topics) $("reg-topic").append(new Option(t.name, t.id));
  for (const c of contacts) $("reg-specialist").append(new Option(`${c.name} (${c.department || c.title})`, c.id));
}

function prepareRegistration(callId, number) {
  if (!callId) return;
  $("reg-call").value = callId;
  $("reg-for").textContent = `Call ${callId}${number ? " from " + number : ""}`;
  $("reg-save").disabled = false;
}

$("registration-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const callId = $("reg-call").value;
  const body = {
    topic_id: $("reg-topic").value ? Number($("reg-topic").value) : null,
    summary: $("reg-summary").value,
    resolution: $("reg-resolution").value,
    specialist_id: $("reg-specialist").value ? Number($("reg-specialist").value) : null,
  };
  try {
    await api("POST", `/api/calls/${callId}/registration`, body);
    notice(`Registration of call ${callId} saved.`);
    $("reg-summary").value = "";
    $("reg-save").disabled = true;
    $("reg-for").textContent = "No call to register.";
  } catch (e) { notice(e.message, true); }
});

// --- queue, script, search ----------------------------------------------------------------------------------------

async function loadQueue() {
  const lines = await api("GET", "/api/console/queue");
  const list = $("queue-list");
  list.replaceChildren();
  for (const line of lines) {
    for (const w of line.waiting) {
      list.append(li(`line ${line.line_id} #${w.position}: ${w.caller_name || w.caller_number || "unknown"} — ${Math.round(w.waiting_s)} s`));
    }
  }
  if (!list.children.length) list.append(li("Nobody waiting."));
}

async function loadScript(lineId) {
  try {
    const script = await api("GET", `/api/console/script${lineId ? "?line=" + lineId : ""}`);
    $("script-greeting").textContent = script.greeting;
    $("script-closing").textContent = script.closing;
  } catch (e) { $("script-greeting").textContent = e.message; }
}

$("search-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const q = encodeURIComponent($("search-q").value);
  const [contacts, answers] = await Promise.all([
    api("GET", `/api/console/directory?q=${q}`), api("GET", `/api/console/answers?q=${q}`),
  ]);
  $("directory-list").replaceChildren(...contacts.map((c) =>
    li(`${c.name}, ${c.title} — ${c.extension || c.phone || "no number"} [${c.topics.join(", ")}]`)));
  $("answers-list").replaceChildren(...answers.map((a) =>
    li(`${a.sensitive ? "SENSITIVE " : ""}${a.topic}: ${a.title} — ${a.body}`, a.sensitive ? "sensitive" : "")));
});
