// Package auth authenticates WebSocket clients with JWTs and keeps each
// connection open only while its token is valid.
//
// A [Verifier] checks tokens under a strict profile (the algorithm comes
// from the key, compact form only, exp required, 5 s leeway, size capped
// before parsing) with a static key ([NewVerifier]), a key set
// ([NewKeySetVerifier]) or a remote JWKS ([NewJWKSVerifier]). With a
// static key, the compact form is split, decoded and its header checked
// here, and the signature verified with crypto/hmac for HS256, HS384 and
// HS512, and with github.com/lestrrat-go/dsig, the signature library under
// jwx's jws package, for RS*, PS*, ES* and EdDSA; a key set or JWKS goes
// through github.com/lestrrat-go/jwx/v3's jws, which picks the key by
// kid. Differential fuzzing holds this path against jwx's own for every
// algorithm family. The claims are decoded strictly and checked here, with
// the subject taken from "sub" or another claim ([WithSubjectClaim]). It
// remembers the tokens it verified ([WithVerifiedCache]), so that a
// reconnect storm of known tokens costs no signature checks, without
// changing any answer; each caller gets a [Principal] of its own.
//
// [Middleware] is HTTP middleware that takes the token from the
// Authorization header, a "bearer.<jwt>" subprotocol entry, a cookie or
// (only through [InsecureQueryToken]) the query string, verifies it and
// puts the [Principal] in the request context; it protects any handler.
// [Sessions] does the same for a wsguard.Server and adds what happens
// after the upgrade: first-message authentication under a deadline,
// closing at the token's expiry, in-band refresh for the same subject and
// revocation ([Revoker], [MemoryRevoker]). A refresh is a JSON message of
// the reserved type "refresh", recognised by parsing, however a client's
// encoder spells it (see [Sessions]).
//
// Configuration mistakes fail at construction: the verifier constructors
// return an error naming the option or key at fault, and [Middleware]
// panics, as wsguard.New does, when given an option that only [Sessions]
// can honour.
//
// Every failure is an errlog.Unauthenticated error: HTTP 401 with
// WWW-Authenticate before the upgrade, close 4401 after it, with the
// public text "token expired" or "invalid token" and the reason in the
// log only. A token is a [Token], which logs as REDACTED; no log line of
// this package carries one.
//
// [Sign] mints real tokens for tests, examples and development tools.
//
// # Configuration mistakes
//
// As everywhere in this module, a configuration mistake fails at start-up
// and the constructor's signature decides how. [NewVerifier],
// [NewKeySetVerifier] and [NewJWKSVerifier] return an error, since their
// keys and key sets are data read at run time, and report an invalid
// option through it too (a JWKS option given to a verifier of a local
// key, by name). [NewSessions] and [Middleware] return none and panic on
// a nil Verifier, naming the call. Each option says what zero means.
//
// Refused handshakes and session ends are logged to the request's logger
// (wsguard.LoggerFrom): the wsguard.Server's when the middleware is
// installed on one; in front of another handler, wrap the chain in
// wsguard.Instrument to name a logger and observer.
package auth
