// Command chat is a small chat server with a page people can open: typed,
// validated messages routed by type, JWT authentication with in-band
// refresh, and an Origin check that refuses other sites' pages.
//
//	go run ./examples/chat            # http://127.0.0.1:8080/
//	go run ./examples/chat -addr :9000
//
// The page connects to /ws through the client module examples/client
// (served at /wsguard.js) with its token in the subprotocol
// "bearer.<jwt>" beside "chat.v1", joins a room and says things that
// are broadcast to the room with their digest. The room hears who joins
// and leaves, and how many are there. A speaker's name is the "name"
// claim of its token (else its subject), never something a message says.
//
// Tokens are HS256, verified with the key in the environment variable
// WSGUARD_CHAT_KEY (32 bytes or more); the page then takes its token from
// its URL fragment, /#token=<jwt>, and says so when that token has
// expired or is refused. Without the variable the server generates a key
// and, for development only, hands out short-lived demo tokens at POST
// /demo/token, for the name given at sign-in.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/wsguard"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	log := errlog.NewLogger(os.Stderr, slog.LevelInfo)
	cfg := config{logger: log}
	if k := os.Getenv("WSGUARD_CHAT_KEY"); k != "" {
		cfg.key = []byte(k)
	}
	a, err := newApp(cfg)
	if err != nil {
		return err
	}
	if a.demo {
		log.Warn("WSGUARD_CHAT_KEY is not set: using a generated key and serving demo tokens at /demo/token (development only)")
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("chat is listening", "url", "http://"+ln.Addr().String()+"/")
	// Serve bounds every HTTP connection's life and, on a signal, closes
	// the sockets (1001, which the page answers by reconnecting, to a
	// listener already closed) and returns once they are all closed.
	return wsguard.Serve(ctx, ln, a, wsguard.WithDrain(a.ws))
}
