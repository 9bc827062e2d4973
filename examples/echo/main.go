// Command echo is a hardened WebSocket echo server: every text message M is
// answered with "Server received: M", behind all of wsguard's default
// protections.
//
//	go run ./examples/echo -addr 127.0.0.1:8765
//
// With -tls-cert and -tls-key (PEM files, such as those go run
// ./examples/certs writes) it serves wss:// instead, and picks up a
// renewed pair without a restart (every minute, or on SIGHUP).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/internal/localca"
	"github.com/wsguard/kit/observe/prom"
	"github.com/wsguard/kit/wsguard"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
}

type config struct {
	addr            string
	origins         string
	readLimit       int64
	rate            float64
	burst           int
	maxConnsPerIP   int
	idleTimeout     time.Duration
	pingInterval    time.Duration
	logFile         string
	shutdownTimeout time.Duration
	metricsAddr     string
	tlsCert         string
	tlsKey          string
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8765", "listen address")
	fs.StringVar(&c.origins, "origins", "", "comma-separated extra allowed Origin host patterns, e.g. app.example.com,*.example.org")
	fs.Int64Var(&c.readLimit, "read-limit", wsguard.DefaultReadLimit, "largest message in bytes")
	fs.Float64Var(&c.rate, "rate", wsguard.DefaultMessageRate, "messages per second per connection")
	fs.IntVar(&c.burst, "burst", wsguard.DefaultMessageBurst, "message burst per connection")
	fs.IntVar(&c.maxConnsPerIP, "max-conns-per-ip", wsguard.DefaultMaxConnsPerIP, "open connections per client IP")
	fs.DurationVar(&c.idleTimeout, "idle-timeout", wsguard.DefaultIdleTimeout, "close connections silent this long")
	fs.DurationVar(&c.pingInterval, "ping-interval", wsguard.DefaultPingInterval, "ping connections quiet this long")
	fs.StringVar(&c.logFile, "log-file", "", "JSON-lines log file (stderr when empty)")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 5*time.Second, "how long to drain connections on SIGTERM")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at /metrics on this address (off when empty)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate chain: serve wss:// (with -tls-key)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key of -tls-cert")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return c, errTLSFlags
	}
	// A bad flag is reported, not a panic in New.
	return c, wsguard.CheckOptions(flagOptions(c)...)
}

var errTLSFlags = errors.New("-tls-cert and -tls-key go together: set both to serve wss://, or neither for ws://")

// flagOptions are the server options the flags set.
func flagOptions(c config) []wsguard.Option {
	opts := []wsguard.Option{
		wsguard.WithReadLimit(c.readLimit),
		wsguard.WithMessageRate(c.rate, c.burst),
		wsguard.WithMaxConns(wsguard.DefaultMaxConns, c.maxConnsPerIP),
		wsguard.WithIdleTimeout(c.idleTimeout),
		wsguard.WithPingInterval(c.pingInterval),
	}
	if c.origins != "" {
		opts = append(opts, wsguard.WithOrigins(strings.Split(c.origins, ",")...))
	}
	return opts
}

// caFlag is the client's -ca flag for the CA file beside certFile, as go
// run ./examples/certs writes it, or "" (a certificate from a public CA,
// or no TLS).
func caFlag(certFile string) string {
	if ca := localca.CABeside(certFile); ca != "" && certFile != "" {
		return " -ca " + ca
	}
	return ""
}

// echo answers each message with "Server received: " and the message.
func echo(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
	return c.Send(ctx, m.Type, append([]byte("Server received: "), m.Data...))
}

func newServer(c config, logger *slog.Logger, extra ...wsguard.Option) *wsguard.Server {
	opts := append([]wsguard.Option{wsguard.WithLogger(logger)}, flagOptions(c)...)
	return wsguard.New(wsguard.HandlerFunc(echo), append(opts, extra...)...)
}

// run serves until ctx ends (SIGINT, SIGTERM), then drains: every
// connection gets 1001, stragglers are dropped after the shutdown timeout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logger := errlog.NewLogger(stderr, slog.LevelInfo)
	if c.logFile != "" {
		l, f, err := errlog.OpenFile(c.logFile, slog.LevelInfo)
		if err != nil {
			return err
		}
		defer f.Close()
		logger = l
	}
	var extra []wsguard.Option
	if c.metricsAddr != "" {
		reg := prometheus.NewRegistry()
		obs, err := prom.New(reg)
		if err != nil {
			return err
		}
		addr, stop, err := prom.Listen(c.metricsAddr, reg, logger)
		if err != nil {
			return err
		}
		defer stop()
		fmt.Fprintf(stdout, "echo: metrics at http://%s/metrics\n", addr)
		extra = append(extra, wsguard.WithObserver(obs))
	}
	ws := newServer(c, logger, extra...)
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	scheme, sopts := "ws", []wsguard.ServeOption{wsguard.WithShutdownTimeout(c.shutdownTimeout)}
	if c.tlsCert != "" {
		scheme, sopts = "wss", append(sopts, wsguard.WithTLS(c.tlsCert, c.tlsKey))
	}
	url := fmt.Sprintf("%s://%s/", scheme, ln.Addr())
	fmt.Fprintf(stdout, "echo: listening on %s\n", url)
	fmt.Fprintf(stdout, "echo: try it from the repository root (type lines, Ctrl-D to quit): go run ./examples/secure/client -url %s%s\n", url, caFlag(c.tlsCert))
	// Serve bounds every HTTP connection's life and, when ctx ends,
	// returns only once the WebSocket connections are drained. It returns
	// at once if the certificate pair does not load.
	return wsguard.Serve(ctx, ln, ws, sopts...)
}
