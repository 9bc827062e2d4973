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
// [Handle], [Query], [Body], [Signed], [NewSealed] and [Dedup] return no
// error, so they panic on an invalid argument or option, with a message
// naming the call and its value ("validate: WithMaxDepth(0): must be >= 1");
// [Sign] and [NewSealClient], whose keys are data, return an error. Each option says what zero or nil
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
// # Sealed messages
//
// [Sealed] keeps a message's content opaque to everything between the
// client and the handler: a TLS-terminating proxy or CDN, a message log,
// the server's own log. A sealed message is a compact JWE (RFC 7516), one
// per text message, in a narrow profile:
//
//	message   = b64(header) "." b64(encrypted-key) "." b64(iv) "." b64(ciphertext) "." b64(tag)
//	header    = {"alg":..., "enc":"A256GCM", "kid":..., "epk":{...}, "rpk":{...}}
//	plaintext = "WSE1" SP dir SP seq SP ts LF body
//
// where b64 is base64url without padding, dir is "c" from the client and
// "s" from the server, and seq, ts and body are as in a signed message.
// The server's key, found by "kid" in the set given to [NewSealed],
// decides the algorithm: an EC P-256 key means "alg":"ECDH-ES+A256KW"
// with the sender's ephemeral key in "epk" (anyone with the public key
// can seal for it); a 32-byte symmetric key means "alg":"dir" with no
// encrypted key (only holders of the key can). "enc" is always A256GCM.
// Web Crypto has all of it (ECDH, AES-KW, AES-GCM), so a browser seals
// with no library.
//
// Before anything is decrypted, a message is refused that is not exactly
// five base64url parts (so the JSON serialization and several recipients
// too), whose encoded header is over 1024 characters or has any member
// but those above ("zip", "crit", "jku", "jwk", "x5u", "apu", "p2c"
// included; names are case-sensitive and may appear once), whose kid is unknown or not the
// one the connection started with, whose alg or enc is not its key's, or
// whose epk, IV, tag or encrypted key does not have the size the profile
// fixes. The server's read limit bounds the whole message before that
// (a 32 KiB body seals to about 44 KiB: raise [wsguard.WithReadLimit]).
// After decryption the payload must name the client's direction, and its
// seq and ts follow [Signed]'s rules: greater than the last seq on the
// connection, within the skew of the server's clock ([WithSkew]).
//
// Every refusal closes the connection with errlog.PolicyViolation (1008)
// and the code's short text, whatever the check, so that a client learns
// nothing from which one failed: no padding or MAC oracle. The server's
// log line names the check and the digest of the ciphertext; the
// plaintext is never logged, and the digest a handler sees ([Digest],
// m.Digest()) is also the ciphertext's.
//
// Replies: the handler seals a message for the client with [Sealed.Send].
// With a symmetric key the reply uses the connection's key. With an EC
// key it is sealed with ECDH-ES+A256KW to the client's reply key: a P-256
// public JWK the client puts in the "rpk" member of its first message's
// protected header, where the AEAD tag covers it; a first message
// without one is refused. The connection pins it; a later message may
// repeat it but not change it. The direction in
// the payload keeps a reply from being sent back as a client's message.
//
// A Go client uses [SealClient]; a browser uses examples/client/sealed.js
// (Web Crypto, no dependency):
//
//	client, err := validate.NewSealClient(serverPublicJWK, nil)
//	msg, err := client.Seal(body)
//	err = conn.Write(ctx, websocket.MessageText, msg)
//	_, reply, err := conn.Read(ctx)
//	body, err = client.Open(reply)
//
// Sealing is not sender authentication under ECDH-ES: authenticate the
// connection at the handshake (package auth), or use a symmetric key per
// principal. As with [Signed], sequence numbers count per connection and
// nothing in the envelope names the connection: a captured message is
// refused again on its own connection, but admitted once on each new
// connection while its timestamp is within the skew. Under an EC key only
// a first message can start a connection (it carries the reply key), and
// the replies to its replay are sealed to the key of the client that
// sealed it, not to whoever replayed it. Serve sealed messages over wss
// too, keep the skew short, and make repeatable messages idempotent.
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
