// wsguard.js: a browser client for a wsguard endpoint. One file, no
// dependencies, no build step: copy it next to a page and import it.
//
//   import { Client } from "./wsguard.js";
//   const client = new Client("/ws", {
//     protocol: "chat.v1",
//     getToken: async ({ reason }) => (await fetch("/token", { method: "POST" })).text(),
//   });
//   client.on("message", (m) => show(m));        // {"type":"message",...}
//   client.on("error", (e) => showFields(e));      // the server's error reply
//   client.addEventListener("stopped", (e) => tellUser(e.detail.text));
//   client.start();
//   client.send("say", { text: "hello" });
//
// What it does for the page:
//   - dials with the token as the subprotocol "bearer.<jwt>" beside the
//     application protocol, after checking the token's exp itself: an
//     expired token is never sent, the page is told (event "stopped",
//     reason "expired") unless getToken gives a fresh one;
//   - refreshes the token in band before exp: it asks getToken for a new
//     one and sends {"type":"refresh","token":...}; the server answers
//     {"type":"refreshed","exp":...} (event "refreshed");
//   - reconnects as the close code says (see POLICY): 4401 gets a new token
//     first, and stops when getToken has nothing newer than the refused
//     token; going away, try again later and too many requests back off
//     (a random delay between half and all of an exponential ceiling, so
//     that a restarted server is not hit by every page at once); a
//     refusal for cause (1008, 1003, 1007, 1009, 4403) stops, with the
//     reason in plain words;
//   - a handshake refused before the socket opened (the browser shows only
//     1006, whatever the HTTP status was) is retried with backoff and a new
//     token, and the page is told (event "unreachable") after
//     maxFailedDials attempts in a row; the retries go on;
//   - sends and receives {"type":...} JSON, and hands the server's
//     {"type":"error","code":...,"fields":[{field,rule,param}]} replies to
//     "error" handlers;
//   - optionally signs every message in validate.Signed's envelope
//     (HMAC-SHA256 through WebCrypto, which needs a secure context: https
//     or localhost).
//
// Events (client.addEventListener(name, (e) => e.detail)):
//   "state"       {state: "connecting"|"open"|"waiting"|"stopped"}
//   "open"        {}
//   "close"       {code, reason, text, retry: "token"|"backoff"|"never", delay}
//   "refreshed"   {exp}
//   "unreachable" {attempts}: the handshake failed that many times in a row
//   "stopped"     {reason: "expired"|"refused"|"closed", code, text}:
//                 "expired" when the only token there is has expired or
//                 was refused with 4401; start() tries again
//   "message"     any message whose type has no handler of its own

// POLICY says what to do after each close code: "token" gets a new token
// and reconnects, "backoff" reconnects after a growing, jittered delay,
// "never" stops and tells the page. TEXT says it in plain words.
export const POLICY = Object.freeze({
  1000: "never",
  1001: "backoff", // server going away (shutdown, restart, idle)
  1002: "never",
  1003: "never",
  1006: "backoff", // no close frame: network, or a refused handshake
  1007: "never",
  1008: "never",
  1009: "never",
  1011: "backoff",
  1012: "backoff",
  1013: "backoff",
  4401: "token",
  4403: "never",
  4408: "backoff",
  4429: "backoff",
});

export const TEXT = Object.freeze({
  1000: "The server ended the connection.",
  1001: "The server went away; reconnecting.",
  1002: "The connection broke the protocol.",
  1003: "The server refused a message it does not accept.",
  1006: "The connection was lost.",
  1007: "A message was not valid text.",
  1008: "Disconnected for breaking the server's rules.",
  1009: "A message was too large.",
  1011: "The server ran into an error.",
  1012: "The server is restarting.",
  1013: "The server is busy; trying again shortly.",
  4401: "The session expired.",
  4403: "Not allowed to connect from here.",
  4408: "Signing in took too long.",
  4429: "Too many messages; slowing down.",
});

// describeClose returns what a close code means for a person, and what
// the client does after it.
export function describeClose(code) {
  return {
    text: TEXT[code] || `The connection closed (${code}).`,
    retry: POLICY[code] || (code >= 4000 && code < 5000 ? "never" : "backoff"),
  };
}

// tokenClaims returns the payload of a JWT, unverified: the server
// verifies it, the page only needs its exp and what it says about the
// user. null when it is not a JWT.
export function tokenClaims(token) {
  try {
    const part = String(token).split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = new TextDecoder().decode(Uint8Array.from(atob(part), (c) => c.charCodeAt(0)));
    const claims = JSON.parse(json);
    return claims && typeof claims === "object" ? claims : null;
  } catch {
    return null;
  }
}

// tokenExpiry returns a token's exp in Unix seconds, or 0.
export function tokenExpiry(token) {
  const exp = tokenClaims(token)?.exp;
  return typeof exp === "number" ? exp : 0;
}

const enc = new TextEncoder();

// What obtain returns when there is no token to dial with.
const NONE = "none";
const FAILED = "failed";

// STABLE is how long, in ms, a connection must have stayed open for the
// backoff to start again from its base.
const STABLE = 10000;

function base64url(bytes) {
  let s = "";
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

// Signer writes validate.Signed's envelope:
//   sig SP "WSG1" SP key-id SP seq SP ts LF body
// with sig the unpadded base64url HMAC-SHA256 of everything after the
// first space. seq starts again at 1 on every connection, as the server
// counts it per connection.
export class Signer {
  constructor(keyId, key) {
    if (!/^[A-Za-z0-9\-._~@:+=]{1,128}$/.test(keyId)) throw new Error("wsguard: invalid key id");
    const raw = typeof key === "string" ? enc.encode(key) : new Uint8Array(key);
    if (raw.length < 16) throw new Error("wsguard: a signing key needs 16 bytes or more");
    if (!globalThis.crypto?.subtle) throw new Error("wsguard: signing needs WebCrypto (https or localhost)");
    this.keyId = keyId;
    this.seq = 0;
    this.key = crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  }

  reset() {
    this.seq = 0;
  }

  async sign(body) {
    this.seq++;
    const signed = `WSG1 ${this.keyId} ${this.seq} ${Date.now()}\n${body}`;
    const sig = await crypto.subtle.sign("HMAC", await this.key, enc.encode(signed));
    return base64url(sig) + " " + signed;
  }
}

// Client is one logical connection to a wsguard endpoint, kept open
// across reconnects until stop() or a close that must not be retried.
export class Client extends EventTarget {
  // url: ws:, wss:, or a path on this page's host.
  // opts.protocol: the application subprotocol (required).
  // opts.getToken({reason}): async, returns a JWT or {token, exp}; reason
  //   is "start", "refresh", "expired" (4401 or a token past exp) or
  //   "refused" (the handshake failed). Without it the socket is dialled
  //   with no token.
  // opts.refreshLead: ms before exp to refresh; default min(60 s, a
  //   quarter of the token's remaining life).
  // opts.backoff: {base: 500, max: 30000} ms.
  // opts.maxFailedDials: failed handshakes in a row before "unreachable"; 5.
  // opts.sign: {keyId, key}: send every message in a signed envelope.
  constructor(url, opts = {}) {
    super();
    if (!opts.protocol) throw new Error("wsguard: Client needs opts.protocol");
    this.url = absoluteURL(url);
    this.opts = opts;
    this.backoff = { base: 500, max: 30000, ...(opts.backoff || {}) };
    this.maxFailedDials = opts.maxFailedDials || 5;
    this.signer = opts.sign ? new Signer(opts.sign.keyId, opts.sign.key) : null;
    this.handlers = new Map();
    this.token = "";
    this.exp = 0;
    this.ws = null;
    this.state = "idle";
    this.attempts = 0; // reconnects since the last open
    this.failedDials = 0; // handshakes in a row that never opened
    this.timer = 0;
    this.refreshTimer = 0;
    this.sending = Promise.resolve();
    this.stopped = true;
    this.run = 0; // counts start() and stop(): a dial of an older run gives up
  }

  // on registers fn for received messages of a type; "error" receives
  // the server's error replies. Other types go to the "message" event.
  on(type, fn) {
    this.handlers.set(type, fn);
    return this;
  }

  get connected() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  // start connects; it is also how the page retries after "stopped".
  start() {
    this.detach();
    this.stopped = false;
    this.attempts = 0;
    this.failedDials = 0;
    this.dial("start");
  }

  // stop closes the connection and reconnects no more.
  stop() {
    this.detach();
    this.stopped = true;
    this.setState("stopped");
  }

  // detach closes the socket, cancels what is scheduled and makes a dial
  // still waiting for its token give up.
  detach() {
    this.run++;
    clearTimeout(this.timer);
    clearTimeout(this.refreshTimer);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onclose = null;
      ws.close(1000);
    }
  }

  // send writes {"type": type, ...fields} and reports whether the
  // connection was open to take it. Messages are sent in call order, also
  // when they are signed.
  send(type, fields = {}) {
    if (type === "refresh") throw new Error('wsguard: the type "refresh" is the server\'s own');
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    const body = JSON.stringify({ type, ...fields });
    if (!this.signer) {
      ws.send(body);
      return true;
    }
    const signer = this.signer;
    this.sending = this.sending
      .then(() => signer.sign(body))
      .then((env) => {
        if (this.ws === ws && ws.readyState === WebSocket.OPEN) ws.send(env);
      })
      .catch((e) => console.error("wsguard: signing failed", e));
    return true;
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.emit("state", { state });
  }

  emit(name, detail) {
    this.dispatchEvent(new CustomEvent(name, { detail }));
  }

  halt(reason, code, text) {
    this.stop();
    this.emit("stopped", { reason, code, text });
  }

  expired() {
    return this.exp !== 0 && this.exp * 1000 <= Date.now();
  }

  // obtain asks the page for a token. It returns {token, exp}; NONE when
  // the page has nothing but refused (the token the server has just
  // refused) or an expired token; FAILED when getToken threw, which may
  // pass (the token endpoint restarting too).
  async obtain(reason, refused) {
    let got;
    try {
      got = await this.opts.getToken({ reason });
    } catch (e) {
      console.warn("wsguard: getToken failed:", e);
      return FAILED;
    }
    const token = typeof got === "string" ? got : got?.token || "";
    const exp = (typeof got === "object" && got?.exp) || tokenExpiry(token);
    if (!token || token === refused || (exp && exp * 1000 <= Date.now())) return NONE;
    return { token, exp };
  }

  // dial opens the socket, after getting a token when there is none yet,
  // the last one expired or was refused (reason "expired"), or the
  // handshake failed (reason "refused").
  async dial(reason) {
    if (this.stopped) return;
    const run = this.run;
    this.setState("connecting");
    if (this.opts.getToken) {
      const why = this.expired() ? "expired" : reason;
      if (!this.token || why !== "reconnect") {
        const t = await this.obtain(why === "reconnect" ? "start" : why, why === "expired" ? this.token : "");
        if (this.run !== run) return;
        if (t === NONE) {
          // Never send a token the server must refuse.
          this.halt("expired", 4401, TEXT[4401]);
          return;
        }
        if (t === FAILED) {
          if (!this.token || why === "expired") {
            this.failed();
            this.retry(this.delay(), why);
            return;
          }
        } else {
          this.token = t.token;
          this.exp = t.exp;
        }
      }
    }
    const protocols = [this.opts.protocol];
    if (this.token) protocols.push("bearer." + this.token);
    let ws;
    try {
      ws = new WebSocket(this.url, protocols);
    } catch (e) {
      this.halt("refused", 0, String(e.message || e));
      return;
    }
    this.ws = ws;
    let openedAt = 0;
    ws.onopen = () => {
      openedAt = Date.now();
      this.failedDials = 0;
      if (this.signer) this.signer.reset();
      this.setState("open");
      this.scheduleRefresh();
      this.emit("open", {});
    };
    ws.onmessage = (ev) => this.receive(ev.data);
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearTimeout(this.refreshTimer);
      this.closed(ev.code, ev.reason, openedAt);
    };
  }

  closed(code, reason, openedAt) {
    const { text, retry } = describeClose(code);
    console.info(`wsguard: closed ${code}${reason ? " (" + reason + ")" : ""}: ${text}`);
    if (retry === "never" || (retry === "token" && !this.opts.getToken)) {
      this.emit("close", { code, reason, text, retry: "never", delay: 0 });
      this.halt(code === 1000 ? "closed" : "refused", code, text);
      return;
    }
    // A connection that stayed up a while starts the backoff afresh; one
    // cut at once (a cap, a rate limit) keeps growing it.
    if (openedAt && Date.now() - openedAt > STABLE) this.attempts = 0;
    let next = retry === "token" ? "expired" : "reconnect";
    if (!openedAt) {
      // The browser hides the refused handshake's status: any of 401,
      // 403, 429 or 503. A new token rules out the first.
      next = "refused";
      this.failed();
    }
    const delay = this.delay();
    this.emit("close", { code, reason, text, retry, delay });
    this.retry(delay, next);
  }

  // failed counts a handshake, or a token fetch, that came to nothing.
  failed() {
    this.failedDials++;
    if (this.failedDials === this.maxFailedDials) {
      this.emit("unreachable", { attempts: this.failedDials });
    }
  }

  retry(delay, reason) {
    this.setState("waiting");
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (reason === "expired") this.exp = 1; // the token was refused: ask for another
      this.dial(reason);
    }, delay);
  }

  // delay is full jitter over an exponential ceiling.
  delay() {
    const ceiling = Math.min(this.backoff.max, this.backoff.base * 2 ** this.attempts);
    this.attempts++;
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    if (!this.opts.getToken || !this.exp) return;
    const left = this.exp * 1000 - Date.now();
    const lead = this.opts.refreshLead ?? Math.min(60000, left / 4);
    this.refreshTimer = setTimeout(() => this.refresh(), Math.max(1000, left - lead));
  }

  // refresh moves the session's expiry without reconnecting. When the
  // page has no newer token, the server closes with 4401 at exp.
  async refresh() {
    const t = await this.obtain("refresh", this.token);
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (t === NONE || t === FAILED) {
      // Try again while the session lasts; at exp the server closes 4401.
      if (t === FAILED && this.exp * 1000 - Date.now() > 3000) {
        this.refreshTimer = setTimeout(() => this.refresh(), 3000);
      }
      return;
    }
    this.token = t.token;
    this.pendingExp = t.exp;
    // Unsigned, and in exactly this form: the server's session layer
    // consumes it before any other middleware.
    ws.send(JSON.stringify({ type: "refresh", token: t.token }));
  }

  receive(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      console.warn("wsguard: a message that is not JSON");
      return;
    }
    if (!msg || typeof msg !== "object" || typeof msg.type !== "string") return;
    if (msg.type === "refreshed") {
      this.exp = typeof msg.exp === "number" ? msg.exp : this.pendingExp;
      this.scheduleRefresh();
      this.emit("refreshed", { exp: this.exp });
      return;
    }
    if (msg.type === "error") {
      msg.fields = Array.isArray(msg.fields) ? msg.fields : [];
    }
    const fn = this.handlers.get(msg.type);
    if (fn) fn(msg);
    else this.emit("message", msg);
  }
}

function absoluteURL(url) {
  if (/^wss?:/.test(url)) return url;
  const u = new URL(url, location.href);
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  return u.href;
}
