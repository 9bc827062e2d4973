"use strict";

// The chat client. It speaks the "chat.v1" subprotocol with its token in a
// "bearer.<jwt>" entry, shows the server's field errors next to the form,
// refreshes its token in-band before it expires and reconnects when the
// server goes away (1001) or restarts (1012).

const $ = (id) => document.getElementById(id);

const state = {
  token: "",
  exp: 0, // Unix seconds
  demo: true, // tokens come from /demo/token
  ws: null,
  joined: null, // {room, email} once the server confirmed
  pendingJoin: null,
  retries: 0,
  refreshTimer: 0,
};

// Close codes after which trying again makes sense: going away, abnormal
// (the handshake failed, the network dropped), service restart, try again
// later, token expired or refused, too many requests.
const RETRY = new Set([1001, 1006, 1012, 1013, 4401, 4429]);

// What a failed rule means, for the fields this page has.
const RULES = {
  required: () => "required",
  email: () => "not a valid e-mail address",
  alphanum: () => "letters and digits only",
  max: (p) => `at most ${p} characters`,
  type: (p) => `must be a ${p}`,
};
const FIELDS = new Set(["room", "email", "text"]);

function setStatus(text, cls) {
  $("status").textContent = text;
  $("status").className = cls;
}

function setConnected(on) {
  $("join").disabled = !on;
  $("say").disabled = !on;
}

function clearErrors() {
  for (const f of FIELDS) {
    $("err-" + f).textContent = "";
    $(f).removeAttribute("aria-invalid");
  }
  $("error").textContent = "";
}

function showError(msg) {
  clearErrors();
  if (!Array.isArray(msg.fields) || msg.fields.length === 0) {
    const where = typeof msg.offset === "number" ? ` (at byte ${msg.offset})` : "";
    $("error").textContent = (msg.message || msg.code) + where;
    return;
  }
  for (const f of msg.fields) {
    const text = (RULES[f.rule] || (() => f.rule))(f.param);
    if (FIELDS.has(f.field)) {
      $("err-" + f.field).textContent = text;
      $(f.field).setAttribute("aria-invalid", "true");
    } else {
      $("error").textContent = `${f.field}: ${text}`;
    }
  }
}

// jwtExp reads the expiry of a token the page was given by hand; the
// server verifies it, the page only needs to know when it runs out.
function jwtExp(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part)).exp || 0;
  } catch {
    return 0;
  }
}

function showToken(refreshed) {
  const until = new Date(state.exp * 1000).toLocaleTimeString();
  const info = $("token-info");
  if (refreshed) {
    info.dataset.refreshes = String(Number(info.dataset.refreshes) + 1);
  }
  info.textContent = `${refreshed ? "token refreshed, " : "token "}valid until ${until}`;
}

// fetchToken gets a demo token, for the same subject when the current
// token is still valid, so that an in-band refresh is accepted.
async function fetchToken() {
  const headers = state.token ? { Authorization: "Bearer " + state.token } : {};
  const r = await fetch("/demo/token", { method: "POST", headers, cache: "no-store" });
  if (r.status === 404) {
    state.demo = false;
    throw new Error("this server hands out no demo tokens: open the page as /#token=<jwt>");
  }
  if (!r.ok) {
    throw new Error(`token endpoint: HTTP ${r.status}`);
  }
  const t = await r.json();
  state.token = t.token;
  state.exp = t.exp;
  $("whoami").textContent = t.sub;
}

function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  if (!state.demo) {
    return;
  }
  const left = state.exp * 1000 - Date.now();
  const lead = Math.min(60000, left / 4);
  state.refreshTimer = setTimeout(refresh, Math.max(1000, left - lead));
}

async function refresh() {
  try {
    await fetchToken();
  } catch (e) {
    $("error").textContent = e.message;
    return;
  }
  scheduleRefresh();
  const ws = state.ws;
  if (ws && ws.readyState === WebSocket.OPEN) {
    // Exactly this form: the server's auth layer consumes it.
    ws.send(JSON.stringify({ type: "refresh", token: state.token }));
  } else {
    showToken(false);
  }
}

function send(msg) {
  const ws = state.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN) {
    $("error").textContent = "not connected";
    return;
  }
  ws.send(JSON.stringify(msg));
}

function addMessage(m) {
  const li = document.createElement("li");
  li.dataset.digest = m.digest;
  const from = document.createElement("span");
  from.className = "from";
  from.textContent = m.from;
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = m.text;
  const meta = document.createElement("span");
  meta.className = "meta";
  const digest = document.createElement("span");
  digest.className = "digest";
  digest.textContent = m.digest.slice(0, 16) + "…";
  digest.title = m.digest;
  meta.append(`#${m.room} · ${new Date(m.at).toLocaleTimeString()} · sha256 `, digest);
  li.append(from, text, meta);
  const list = $("messages");
  list.append(li);
  list.scrollTop = list.scrollHeight;
}

function onMessage(ev) {
  let msg;
  try {
    msg = JSON.parse(ev.data);
  } catch {
    return;
  }
  switch (msg.type) {
    case "joined":
      state.joined = state.pendingJoin || state.joined;
      clearErrors();
      $("room-status").textContent = `in #${msg.room}, ${msg.members} here`;
      break;
    case "message":
      addMessage(msg);
      break;
    case "refreshed":
      state.exp = msg.exp;
      showToken(true);
      break;
    case "error":
      showError(msg);
      break;
  }
}

function onClose(ev) {
  state.ws = null;
  setConnected(false);
  $("room-status").textContent = "";
  setStatus(`disconnected (${ev.code}${ev.reason ? ": " + ev.reason : ""})`, "bad");
  if (!RETRY.has(ev.code) || (ev.code === 4401 && !state.demo)) {
    $("reconnect").hidden = false;
    return;
  }
  const delay = Math.min(30000, 500 * 2 ** state.retries) + Math.random() * 250;
  state.retries++;
  setTimeout(async () => {
    // After a refused or failed handshake the token may be the reason:
    // a restarted demo server has a new key.
    if (state.demo && (ev.code === 4401 || ev.code === 1006 || state.exp * 1000 - Date.now() < 60000)) {
      try {
        await fetchToken();
        scheduleRefresh();
      } catch (e) {
        $("error").textContent = e.message;
      }
    }
    connect();
  }, delay);
}

function connect() {
  $("reconnect").hidden = true;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/ws`, ["chat.v1", "bearer." + state.token]);
  state.ws = ws;
  setStatus("connecting", "pending");
  ws.onopen = () => {
    state.retries = 0;
    const status = $("status");
    status.dataset.connects = String(Number(status.dataset.connects || 0) + 1);
    setStatus("connected", "ok");
    setConnected(true);
    showToken(false);
    if (state.joined) {
      state.pendingJoin = state.joined;
      send({ type: "join", room: state.joined.room, email: state.joined.email });
    }
  };
  ws.onmessage = onMessage;
  ws.onclose = onClose;
}

$("join-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  state.pendingJoin = { room: $("room").value, email: $("email").value };
  send({ type: "join", room: state.pendingJoin.room, email: state.pendingJoin.email });
});

$("say-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $("text").value;
  send({ type: "say", text });
  $("text").value = "";
  $("err-text").textContent = "";
});

$("reconnect").addEventListener("click", () => {
  state.retries = 0;
  connect();
});

async function start() {
  const given = new URLSearchParams(location.hash.slice(1)).get("token");
  if (given) {
    // A token from elsewhere; the fragment never reaches the server's logs.
    state.token = given;
    state.exp = jwtExp(given);
    state.demo = false;
    history.replaceState(null, "", location.pathname);
  } else {
    try {
      await fetchToken();
    } catch (e) {
      setStatus("no token", "bad");
      $("error").textContent = e.message;
      return;
    }
    scheduleRefresh();
  }
  connect();
}

start();
