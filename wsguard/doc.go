// Package wsguard serves WebSocket endpoints that are hard to abuse.
//
// [New] wraps a message [Handler] in a [Server], an http.Handler that applies
// the secure defaults before anyone configures anything: a same-host Origin
// check, per-IP handshake rate and connection caps, compression off, a 32 KiB
// read limit, UTF-8 checks on text messages, a per-connection message rate,
// keepalive pings with an idle timeout, a write timeout for slow clients,
// panic recovery, and graceful draining with [Server.Shutdown]. [Serve]
// and [ListenAndServe] run it on an http.Server whose timeouts and header
// bound keep idle, slow and refused clients from holding sockets, and wait
// for the drain when they stop.
//
// There are two levels of middleware, both plain functions. Before the
// upgrade, guards are func(http.Handler) http.Handler ([OriginCheck],
// [HandshakeLimit], [ConnLimit], [IPFilter], [RealIP]) and protect any
// handler, including one written with another WebSocket library. After the
// upgrade, [Middleware] is func(Handler) Handler over messages, composed with
// [Chain].
//
// Every failure is classified once with an errlog code, which decides the
// close status or HTTP status, the log level and the short text the client
// sees; the internal detail goes to the log only.
package wsguard
