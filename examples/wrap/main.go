// Command wrap hardens a WebSocket handler a team already runs, written
// with gorilla/websocket (legacy.go), without changing it: it serves the
// handler at "/" behind a wsguard.Server's own guards (Server.Guard),
// while the Server itself serves the same echo, moved to wsguard, at
// "/v2".
//
//	WSGUARD_JWT_SECRET=<at least 32 bytes> go run ./examples/wrap
//
// Both paths pass the same guard instances, in the order the Server
// applies them (cheap refusals before the costly ones), so a client IP
// has one connection budget for the whole service:
//
//   - handshakes per second per client IP (429);
//   - open connections in total (503) and per IP (429), held for as long
//     as the handler serves the connection;
//   - cross-origin pages refused (403), which the legacy handler's
//     CheckOrigin never did;
//   - auth.Middleware: an HS256 token in the Authorization header or a
//     "bearer.<jwt>" subprotocol entry beside "wsguard.v1" (401 when
//     missing or invalid). The entry is removed before the handler runs;
//     the legacy upgrader lists "wsguard.v1" in its Subprotocols, so a
//     browser that sent the token that way gets the protocol it asked
//     for. Without that line gorilla would select none, and the browser
//     would fail the handshake.
//
// With -tls-cert and -tls-key (PEM files, such as those go run
// ./examples/certs writes) it serves wss://, and picks up a renewed pair
// without a restart (every minute, or on SIGHUP). Without them it serves
// ws://, and warns at start-up when the address is reachable from other
// hosts: the tokens would travel in clear unless a TLS-terminating proxy
// is in front.
//
// Refusals on either path go to the one log, and on SIGTERM the Server
// drains both: its own connections get 1001, the legacy handler's request
// context is canceled, and sockets still open when the shutdown timeout
// ends are closed.
//
// What happens after the upgrade at "/" is still the legacy handler's
// business: it sets no message size limit, rate, idle timeout, or end of
// the session when the token expires. "/v2" has all of them.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"

	"github.com/wsguard/kit/auth"
	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/internal/localca"
	"github.com/wsguard/kit/wsguard"
)

const secretEnv = "WSGUARD_JWT_SECRET"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "wrap:", err)
		os.Exit(1)
	}
}

type config struct {
	addr           string
	origins        string
	handshakeRate  float64
	handshakeBurst int
	maxConns       int
	maxConnsPerIP  int
	tlsCert        string
	tlsKey         string

	secret []byte
	logger *slog.Logger
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("wrap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8889", "listen address")
	fs.StringVar(&c.origins, "origins", "", "comma-separated extra allowed Origin host patterns")
	fs.Float64Var(&c.handshakeRate, "handshake-rate", wsguard.DefaultHandshakeRate, "handshakes per second per client IP")
	fs.IntVar(&c.handshakeBurst, "handshake-burst", wsguard.DefaultHandshakeBurst, "handshake burst per client IP")
	fs.IntVar(&c.maxConns, "max-conns", wsguard.DefaultMaxConns, "open connections in total")
	fs.IntVar(&c.maxConnsPerIP, "max-conns-per-ip", wsguard.DefaultMaxConnsPerIP, "open connections per client IP")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate chain: serve wss:// (with -tls-key)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key of -tls-cert")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return c, errTLSFlags
	}
	// The guards' constructors panic on a bad value, a bug in a program; a
	// flag is the user's input, so it is checked as an error here, by the
	// options that take the same values.
	return c, wsguard.CheckOptions(
		wsguard.WithHandshakeRate(c.handshakeRate, c.handshakeBurst),
		wsguard.WithMaxConns(c.maxConns, c.maxConnsPerIP))
}

var errTLSFlags = errors.New("-tls-cert and -tls-key go together: set both to serve wss://, or neither for ws://")

// newHandler returns the Server and the mux that serves the legacy
// handler behind its guards and the Server beside it.
func newHandler(c config) (*wsguard.Server, http.Handler, error) {
	v, err := auth.NewHMACVerifier(c.secret)
	if err != nil {
		return nil, nil, err
	}
	opts := []wsguard.Option{
		wsguard.WithLogger(c.logger),
		wsguard.WithHandshakeRate(c.handshakeRate, c.handshakeBurst),
		wsguard.WithMaxConns(c.maxConns, c.maxConnsPerIP),
		wsguard.WithSubprotocols("wsguard.v1"),
		wsguard.WithHandshake(auth.Middleware(v)),
	}
	if c.origins != "" {
		opts = append(opts, wsguard.WithOrigins(strings.Split(c.origins, ",")...))
	}
	if err := wsguard.CheckOptions(opts...); err != nil {
		return nil, nil, err
	}
	srv := wsguard.New(wsguard.HandlerFunc(func(ctx context.Context, conn *wsguard.Conn, m *wsguard.Message) error {
		return conn.Send(ctx, m.Type, append([]byte("Server received: "), m.Data...))
	}), opts...)
	mux := http.NewServeMux()
	mux.Handle("/", srv.Guard(http.HandlerFunc(legacyEcho)))
	mux.Handle("/v2", srv)
	return srv, mux, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	c.logger = errlog.NewLogger(stderr, slog.LevelInfo)
	demo := getenv(secretEnv) == ""
	if demo {
		c.secret = make([]byte, 32)
		_, _ = rand.Read(c.secret)
	} else {
		c.secret = []byte(getenv(secretEnv))
	}
	srv, h, err := newHandler(c)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	// Clients send tokens: Serve warns when they would cross the network
	// in clear.
	scheme, sopts := "ws", []wsguard.ServeOption{wsguard.WithServeLogger(c.logger), wsguard.WithCredentials()}
	caFlag := ""
	if c.tlsCert != "" {
		scheme, sopts = "wss", append(sopts, wsguard.WithTLS(c.tlsCert, c.tlsKey))
		if ca := localca.CABeside(c.tlsCert); ca != "" {
			caFlag = " -ca " + ca
		}
	}
	url := fmt.Sprintf("%s://%s/", scheme, ln.Addr())
	fmt.Fprintf(stdout, "wrap: listening on %s\n", url)
	if demo {
		tok, err := auth.Sign(jwa.HS256(), c.secret, auth.Claims{Subject: "demo", Expiry: time.Now().Add(time.Hour)})
		if err != nil {
			ln.Close()
			return err
		}
		fmt.Fprintf(stdout, "wrap: %s is not set; this run signs with a random key. Try it from the repository root (type lines, Ctrl-D to quit):\n", secretEnv)
		fmt.Fprintf(stdout, "go run ./examples/secure/client -url %s%s -token %s\n", url, caFlag, string(tok))
	}
	// Serve bounds every HTTP connection's life, so that refused and idle
	// clients do not keep sockets open, and drains srv, with the legacy
	// connections behind its Guard, on SIGTERM.
	return wsguard.Serve(ctx, ln, h, append(sopts, wsguard.WithDrain(srv))...)
}
