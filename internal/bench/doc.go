// Package bench measures wsguard against the transports it is compared
// with: raw coder/websocket, raw gorilla/websocket, the guarded echo with
// every default guard on, and the full stack (JWT at the handshake, typed
// JSON decoding and validation, a digest of every message); and the
// handshake in a reconnect storm ([HandshakeVariants], [Storm]): the bare
// coder/websocket upgrade against the guarded one verifying HS256, ES256
// or EdDSA tokens in full or through auth's verified-token cache; a
// broadcast to a room ([RoomVariants], [ServeRoom], [OpenFanout]) with
// wsguard.Group, a loop of Sends and gorilla's chat hub; and plain
// against sealed round trips ([SealedVariants], [OpenSealed]).
//
// Every figure is meant to be read as a ratio against raw coder/websocket
// measured in the same process and the same run: the benchmarks interleave
// the raw coder reference with the variant under test, and the load
// command (internal/cmd/load) does the same across processes; the
// broadcast and sealed variants are measured against their own reference
// (the group, plain round trips), in one process.
//
// The client side is a minimal hand-written WebSocket client that
// allocates nothing per message, so that allocation counts measured in
// one process are the server's. Benchmarks run only with -bench:
//
//	go test ./internal/bench -run '^$' -bench . -benchtime 2s
//
// The results table is in the repository README; README.md here explains it.
package bench
