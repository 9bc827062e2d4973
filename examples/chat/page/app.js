// The chat page. It talks to /ws through the client module wsguard.js,
// which carries the token, refreshes it in band and reconnects as the
// close code says; this file is the chat itself. Who you are comes from
// your token: a demo token made for the name you give, or a token handed
// to you in a link, /#token=<jwt>.

import { Client, tokenClaims } from "/wsguard.js";

const $ = (id) => document.getElementById(id);

const state = {
  demo: true, // tokens come from /demo/token
  token: "", // the latest token
  fresh: false, // state.token was fetched for the next dial
  name: "", // asked for by the sign-in form
  me: { sub: "", name: "" },
  room: "", // the room the server confirmed
  pendingRoom: "",
};

// What a failed rule means, for the fields this page has.
const RULES = {
  required: () => "required",
  alphanum: () => "letters and digits only",
  max: (p) => `at most ${p} characters`,
  type: (p) => `must be a ${p}`,
};
const FIELDS = ["room", "text"];

function setStatus(text, cls, title = "") {
  const s = $("status");
  s.textContent = text;
  s.className = cls;
  s.title = title;
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
  if (msg.fields.length === 0) {
    $("error").textContent = msg.message || msg.code;
    return;
  }
  for (const f of msg.fields) {
    const text = (RULES[f.rule] || (() => f.rule))(f.param);
    if (FIELDS.includes(f.field)) {
      $("err-" + f.field).textContent = text;
      $(f.field).setAttribute("aria-invalid", "true");
    } else {
      $("error").textContent = `${f.field}: ${text}`;
    }
  }
}

// setIdentity shows who the token says this page is.
function setIdentity(token) {
  const c = tokenClaims(token) || {};
  state.me = { sub: String(c.sub || ""), name: String(c.name || c.sub || "") };
  $("whoami").textContent = state.me.name || "nobody yet";
  $("whoami").title = state.me.sub;
}

function showExpiry(exp, refreshed) {
  const info = $("token-info");
  if (refreshed) {
    info.dataset.refreshes = String(Number(info.dataset.refreshes) + 1);
  }
  const until = new Date(exp * 1000).toLocaleTimeString();
  info.textContent = `${refreshed ? "token refreshed, " : "token "}valid until ${until}`;
}

// fetchToken gets a demo token: for the same subject and name while the
// current token is valid (which an in-band refresh needs), else for a
// new guest with the name given at sign-in.
async function fetchToken() {
  const headers = { "Content-Type": "application/json" };
  if (state.token) headers.Authorization = "Bearer " + state.token;
  const r = await fetch("/demo/token", {
    method: "POST",
    headers,
    body: JSON.stringify(state.name ? { name: state.name } : {}),
    cache: "no-store",
  });
  if (r.status === 404) {
    state.demo = false;
    throw new Error("This server hands out no demo tokens: open the link you were given.");
  }
  if (!r.ok) {
    throw new Error(`The token service answered ${r.status}.`);
  }
  const t = await r.json();
  state.token = t.token;
  setIdentity(t.token);
  return { token: t.token, exp: t.exp };
}

// getToken is what the client module asks whenever it needs a token. A
// link's token is the only one there is: once it has expired or been
// refused, the module stops and says so instead of retrying it.
async function getToken() {
  if (!state.demo) {
    return state.token;
  }
  if (state.fresh) {
    state.fresh = false;
    return state.token;
  }
  return fetchToken();
}

const client = new Client("/ws", { protocol: "chat.v1", getToken });

function line(cls) {
  const li = document.createElement("li");
  li.className = cls;
  const list = $("messages");
  list.append(li);
  return li;
}

function scrollDown() {
  const list = $("messages");
  list.scrollTop = list.scrollHeight;
}

function addNotice(text) {
  line("notice").textContent = text;
  scrollDown();
}

function addMessage(m, mine) {
  const li = line(mine ? "mine" : "theirs");
  li.dataset.digest = m.digest;
  const from = document.createElement("span");
  from.className = "from";
  from.textContent = mine ? "you" : m.from;
  from.title = m.sub;
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
  scrollDown();
}

function showMembers(room, n) {
  $("room-status").textContent = `in #${room}, ${n} here`;
}

client.on("joined", (m) => {
  // The server's word on who this is, should the page have read the
  // token differently.
  $("whoami").textContent = m.name;
  state.room = m.room;
  clearErrors();
  showMembers(m.room, m.members);
  addNotice(`You joined #${m.room}.`);
});

client.on("presence", (m) => {
  if (m.room !== state.room) return;
  showMembers(m.room, m.members);
  if (m.sub !== state.me.sub) {
    addNotice(`${m.name} ${m.event === "join" ? "joined" : "left"}.`);
  }
});

client.on("message", (m) => {
  const mine = m.sub === state.me.sub;
  addMessage(m, mine);
  // The text leaves the box only once the server has taken it.
  if (mine && $("text").value === m.text) {
    $("text").value = "";
    $("err-text").textContent = "";
    $("text").removeAttribute("aria-invalid");
  }
});

client.on("error", (m) => {
  if (m.code === "not_joined") {
    clearErrors();
    $("error").textContent = "Join a room first.";
    return;
  }
  showError(m);
});

client.addEventListener("state", (e) => {
  if (e.detail.state === "connecting") setStatus("connecting", "pending");
});

client.addEventListener("open", () => {
  const status = $("status");
  status.dataset.connects = String(Number(status.dataset.connects || 0) + 1);
  setStatus("connected", "ok");
  setConnected(true);
  $("reconnect").hidden = true;
  $("error").textContent = "";
  showExpiry(client.exp, false);
  const room = state.room || state.pendingRoom;
  if (room) {
    state.room = "";
    state.pendingRoom = room;
    client.send("join", { room });
  }
});

client.addEventListener("close", (e) => {
  const d = e.detail;
  setConnected(false);
  $("room-status").textContent = "";
  // Plain words for people; the code for whoever looks closer.
  setStatus(d.retry === "never" ? "disconnected" : "reconnecting", "bad", `close code ${d.code}${d.reason ? ": " + d.reason : ""}`);
  $("error").textContent = d.text;
});

client.addEventListener("refreshed", (e) => showExpiry(e.detail.exp, true));

client.addEventListener("unreachable", (e) => {
  $("error").textContent = `Cannot reach the chat server (${e.detail.attempts} tries). Still trying…`;
});

client.addEventListener("stopped", (e) => {
  const d = e.detail;
  setConnected(false);
  $("room-status").textContent = "";
  if (d.reason === "expired") {
    if (state.demo) {
      setStatus("signed out", "bad", `close code ${d.code}`);
      $("error").textContent = "Your session has expired. Sign in again.";
      state.token = "";
      $("name-form").hidden = false;
    } else {
      const exp = tokenClaims(state.token)?.exp || 0;
      setStatus("link expired", "bad", `close code ${d.code}`);
      $("error").textContent =
        exp * 1000 <= Date.now()
          ? "This link has expired. Ask for a new one."
          : "This link is no longer accepted. Ask for a new one.";
    }
    return;
  }
  setStatus("disconnected", "bad", d.code ? `close code ${d.code}` : "");
  $("error").textContent = d.text;
  $("reconnect").hidden = false;
});

$("name-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const name = $("name").value.trim();
  const chars = [...name].length;
  if (chars === 0 || chars > 32) {
    $("err-name").textContent = "1 to 32 characters";
    $("name").setAttribute("aria-invalid", "true");
    return;
  }
  $("err-name").textContent = "";
  $("name").removeAttribute("aria-invalid");
  state.name = name;
  state.token = "";
  try {
    await fetchToken();
  } catch (e) {
    $("error").textContent = e.message;
    return;
  }
  state.fresh = true;
  $("name-form").hidden = true;
  client.start();
});

$("join-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  state.pendingRoom = $("room").value;
  client.send("join", { room: state.pendingRoom });
});

$("say-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $("text").value;
  if (text.trim() === "") {
    // Nothing to say; the server would count it as an invalid message.
    $("text").focus();
    return;
  }
  if (!client.send("say", { text })) {
    $("error").textContent = "Not connected: your message is kept.";
  }
});

$("reconnect").addEventListener("click", () => client.start());

function main() {
  const given = new URLSearchParams(location.hash.slice(1)).get("token");
  if (given) {
    // A token from elsewhere; the fragment never reaches the server's logs.
    state.demo = false;
    state.token = given;
    history.replaceState(null, "", location.pathname);
    setIdentity(given);
    client.start();
    return;
  }
  setStatus("signed out", "pending");
  $("name-form").hidden = false;
  $("name").focus();
}

main();
