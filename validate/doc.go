// Package validate turns untrusted WebSocket messages into typed, checked
// Go values, and guards their integrity.
//
// # Typed messages
//
// Build one [Validator] at start-up with [New] (custom rules with
// [WithRule]) and share it. [JSON] wraps a func(ctx, *wsguard.Conn, T)
// error so that it receives a decoded and validated T; a [Router] picks
// the handler, and so the struct and its rules, by the message's "type"
// member ([Handle]). Rules are go-playground/validator's `validate` tags;
// fields are reported by their JSON names.
//
// Decoding is strict, because the message comes from anyone:
//
//   - the message must be one JSON object, with nothing after it;
//   - unknown members are rejected, and names match case-sensitively;
//   - a key may appear once per object;
//   - nesting is capped at [DefaultMaxDepth] ([WithMaxDepth]);
//   - a number must fit its field: 300 does not fit an int8, 1.5 does not
//     fit an int, 1e400 does not fit a float64;
//   - strings must be valid UTF-8;
//   - the size is capped by the server's read limit before any of this.
//
// # Configuration mistakes
//
// As everywhere in this module, a configuration mistake fails at start-up
// and the constructor's signature decides how: [New], [JSON], [NewRouter],
// [Handle], [Query], [Body], [Signed] and [Dedup] return no error, so they panic on
// an invalid argument or option, with a message naming the call and its
// value ("validate: WithMaxDepth(0): must be >= 1"); [Sign], whose key and
// key id are data, returns an error. Each option says what zero or nil
// means: the default (the clocks, the logger of [Audit]) or refused (every
// size, limit and window).
//
// # Error replies
//
// A message that fails is not a reason to disconnect: the error is
// errlog.InvalidArgument, which the wsguard server answers with an error
// reply and counts; only several in a row close the connection (1008).
// The reply names the problem, never the submitted value:
//
//	{"type":"error","code":"invalid_argument","fields":[{"field":"email","rule":"email"}]}
//	{"type":"error","code":"invalid_argument","offset":42,"fields":[{"field":"age","rule":"type","param":"integer"}]}
//	{"type":"error","code":"invalid_argument","message":"unknown field","offset":17}
//	{"type":"error","code":"invalid_json","message":"duplicate key","offset":25}
//
// Field paths are dotted JSON names with indices ("items[2].email"); they
// stop before a map key, which the client chose. Rules are the validator's
// tags, or [RuleType], [RuleRange], [RuleInvalid] for values that could not
// be decoded at all. The server's log line for the message carries its
// digest, never its content.
//
// [Query] applies the same strictness and rules to the query string of
// the handshake, answering HTTP 400 with the same JSON; [Body] does it for
// the JSON body of an HTTP request, and [WriteError] answers any failed
// HTTP request with the reply a WebSocket client would get for its error.
//
// # Digests and audit
//
// [Digest] gives a typed handler the digest of the message it handles: the
// server's lazy hex SHA-256, computed once, only when asked. [Audit] logs
// one line per message with the connection, subject, type, size and
// digest, never the content.
//
// # Signed messages
//
// [Signed] admits only messages signed with a key shared between the
// server and one principal (a device, a backend peer), and refuses a
// message replayed on its connection or outside a time window around the
// server's clock. It does not stop a captured message from replaying on
// another connection within that window (see below). A signed message is
// text or binary:
//
//	message = sig SP signed
//	signed  = "WSG1" SP key-id SP seq SP ts LF body
//	sig     = base64url(HMAC-SHA256(key, signed)), without padding: 43 characters
//	key-id  = 1 to 128 of ALPHA / DIGIT / "-" / "." / "_" / "~" / "@" / ":" / "+" / "="
//	seq     = decimal, no sign, no leading zero; greater than the last seq on the connection
//	ts      = decimal unix milliseconds, no leading zero; within the skew of the server's clock
//	body    = any bytes: what the next handler receives (a JSON object for a Router)
//
// where SP is one space and LF one line feed. The MAC covers everything
// after the first space, the version tag "WSG1" included, so no field can
// be changed or moved without the key. The key id names the principal and
// so the key ([KeyFunc]). Verification uses hmac.Equal.
//
// For example, the key "0123456789abcdef0123456789abcdef", key id
// "device-7", seq 1, ts 1767225600000 and the body
// {"type":"say","text":"hello"} give the message
//
//	_CAfK3a6skJUNR3vMk17uAmFl55hBFEAZaKmaTK2AUs WSG1 device-7 1 1767225600000
//	{"type":"say","text":"hello"}
//
// A Go client signs with [Sign]:
//
//	seq++
//	msg, err := validate.Sign(key, "device-7", seq, time.Now(), body)
//	if err != nil {
//		return err
//	}
//	err = conn.Write(ctx, websocket.MessageText, msg)
//
// A browser or Node.js client signs with Web Crypto:
//
//	const enc = new TextEncoder();
//	const key = await crypto.subtle.importKey(
//	  "raw", rawKeyBytes, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
//	let seq = 0;
//	async function signed(keyId, body) {
//	  seq += 1;
//	  const text = `WSG1 ${keyId} ${seq} ${Date.now()}\n${body}`;
//	  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode(text)));
//	  const sig = btoa(String.fromCharCode(...mac))
//	    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
//	  return `${sig} ${text}`;
//	}
//	ws.send(await signed("device-7", JSON.stringify({ type: "say", text: "hello" })));
//
// Messages must be sent in the order they were signed: sign and send from
// one place, not from concurrent tasks.
//
// Sequence numbers count per connection, and nothing in the envelope names
// the connection. Someone who captured a signed message can send it again
// on connections of their own, and it is admitted once on each of them as
// long as its timestamp is within the skew of the server's
// clock ([DefaultSkew], 30 s either way; [WithSkew]). Only a message's
// sequence number on its own connection and its age are checked. Serve
// signed messages over wss so that they cannot be captured, keep the
// skew as short as the clients' clocks allow, and give messages whose
// repetition matters an id the application remembers.
//
// # Duplicates
//
// [Dedup] drops a message identical to one the same connection sent, and
// the handler accepted, within a window: the retry of a client that did
// not see its message arrive. Its memory per connection is bounded.
//
// # Order
//
// A typical chain, outermost first:
//
//	wsguard.NewChain(validate.Audit(logger), validate.Dedup(time.Minute), validate.Signed(keys)).Then(router)
package validate
