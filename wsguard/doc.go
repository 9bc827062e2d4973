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
// for the drain when they stop; with [WithTLS] they serve wss:// (TLS 1.2
// and up, HTTP/1.1 only) and pick up a renewed certificate without a
// restart.
//
// There are two levels of middleware, both plain functions. Before the
// upgrade, guards are func(http.Handler) http.Handler ([OriginCheck],
// [HandshakeLimit], [ConnLimit], [IPFilter], [RealIP]) and protect any
// handler, including one written with another WebSocket library. After the
// upgrade, [Middleware] is func(Handler) Handler over messages, composed with
// [Chain]. [Server.Guard] puts a handler the Server does not run behind the
// Server's own guards, counters, observer and drain.
//
// A connection holds application values for its lifetime in [ConnValue]
// keys. A message's correlation id ([Message.ID]) is echoed in the error
// reply. Package wsguardtest runs a Handler in a unit test.
//
// # Sending: to this connection, to others, to many
//
// [Conn.Send] writes to the connection and waits until the socket has
// taken the message, bounded by its ctx and the write timeout; a ctx that
// ends mid-write ends the connection. It is for answering the connection
// being served, with the handler's ctx. [Conn.Enqueue] queues a message
// and returns at once, never waiting on the client: it is for writing to
// other connections. Each connection's queue is bounded
// ([WithSendQueue], 1 MiB and 1024 messages by default); a client that
// lets it fill is closed with 4429 and the sender goes on. Its writer
// goroutine runs only while the queue holds messages, and gathers those
// that piled up into few writes to the socket. A [Group] (a room, a
// topic) encodes a broadcast once and enqueues it to every member; its
// members leave it when they end, and with a [Relay] (store/redisstore's
// Groups) it spans several processes.
//
// # Configuration mistakes
//
// A configuration mistake fails at start-up, never in a serving goroutine,
// and the same way in every package of this module: the constructor's
// signature decides. A constructor that returns an error ([NewRealIP],
// [NewIPFilter], [NewOriginCheck]: their inputs are lists an application
// typically reads from flags or files at run time) reports every invalid
// input through that error. One that returns no error ([New], [NewConnLimit],
// [NewHandshakeLimit], [NewSubjectConnLimit]) panics, as regexp.MustCompile
// does: its arguments are written in the program, so a bad one is a bug
// that no caller could handle better than by stopping. Either way the
// message names the option or call and its value:
//
//	wsguard: WithReadLimit(-5): must be between 1 and 1 GiB
//
// Options built from a user's input (flags, a configuration file) are
// checked with [CheckOptions], which returns that message as an error, so
// that the program reports it instead of crashing.
//
// Each option says what zero (or nil) means: off ([WithPingInterval],
// [WithIdleTimeout]), the default ([WithLogger], [WithGuardClock]), or
// refused (every size, rate, cap and timeout that has no safe "off"). An
// option that would be ignored, such as [WithOrigins] beside
// [InsecureSkipOriginCheck], is refused too.
//
// # One logger, one observer
//
// A Server hands its logger ([WithLogger]) and observer ([WithObserver])
// to everything installed on it, through the request context: the guards,
// the handshake middleware ([WithHandshake]), the message middleware and
// the connection, and the stores of store/redisstore. They read them with
// [LoggerFrom] and [ObserverFrom] and have no logger of their own. Guards
// composed by hand in front of another handler get theirs from
// [Instrument]. A guard refuses, logs and reports the same way whether a
// Server runs it or it is composed by hand: the Server calls, in line, the
// same code as the guard's Handler.
//
// Every failure is classified once with an errlog code, which decides the
// close status or HTTP status, the log level and the short text the client
// sees; the internal detail goes to the log only.
package wsguard
