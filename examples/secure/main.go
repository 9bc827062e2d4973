// Command secure is examples/echo behind JWT authentication: every text
// message M of an authenticated client is answered with
// "Server received: M", with all of wsguard's default protections, and a
// connection lasts no longer than its token.
//
//	WSGUARD_JWT_SECRET=<at least 32 bytes> go run ./examples/secure -issuer https://id.example
//
// Tokens are HS256 JWTs signed with WSGUARD_JWT_SECRET, with exp in the
// future, nbf (if any) not in the future, a sub, and iss and aud when
// -issuer and -audience are set. A token that carries its subject in
// another claim, such as the {"user_id": 42, "exp": ...} of many
// tutorials, is accepted with -subject-claim user_id: a string or an
// integer there is the subject. When WSGUARD_JWT_SECRET is unset the
// server makes up a key for the run and prints a demo token and a client
// command on stdout.
//
// A client presents its token in the Authorization header
// ("Bearer <jwt>"), as the subprotocol entry "bearer.<jwt>" beside
// "wsguard.v1" (what a browser can do:
// new WebSocket(url, ["wsguard.v1", "bearer." + token])), or as its first
// text message within -auth-timeout. An invalid token at the handshake is
// refused with HTTP 401; as the first message, it closes the connection
// with 4401 "invalid token" or "token expired"; no token in time closes it
// with 4408. A valid one is answered with "Authenticated!". At the token's
// exp plus 5 s the connection closes with 4401 "token expired", unless the
// client has sent {"type":"refresh","token":"<new jwt>"} for the same sub.
//
// With -tls-cert and -tls-key (PEM files, such as those go run
// ./examples/certs writes) it serves wss://, and picks up a renewed pair
// without a restart (every minute, or on SIGHUP); the demo client command
// then trusts the CA beside the certificate with -ca. Without them it
// serves ws://, and warns at start-up when the address is reachable from
// other hosts: the tokens would travel in clear unless a TLS-terminating
// proxy is in front.
//
// With -metrics-addr the server serves Prometheus metrics at /metrics on
// that address, a listener apart from the WebSocket one (off by default).
// With -redis-addr, instances sharing that Redis enforce one revocation
// list, one connection cap per client IP and one handshake rate:
// revocation fails closed when Redis is unreachable, the limits fail open
// (with a warning and the wsguard_store_errors_total metric).
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
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/wsguard/kit/auth"
	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/internal/localca"
	"github.com/wsguard/kit/observe/prom"
	"github.com/wsguard/kit/store/redisstore"
	"github.com/wsguard/kit/wsguard"
)

// secretEnv names the environment variable holding the HS256 key.
const secretEnv = "WSGUARD_JWT_SECRET"

// demoTTL is the lifetime of the demo token printed when the key is made up.
const demoTTL = time.Hour

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "secure:", err)
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
	authTimeout     time.Duration
	issuer          string
	audience        string
	subjectClaim    string
	metricsAddr     string
	redisAddr       string
	tlsCert         string
	tlsKey          string

	secret   []byte            // the HS256 key
	observer wsguard.Observer  // from -metrics-addr, or nil
	store    *redisstore.Store // from -redis-addr, or nil
	leeway   time.Duration     // on exp, nbf and iat; not a flag, tests shorten it
	logger   *slog.Logger
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	c := config{leeway: auth.DefaultLeeway}
	fs := flag.NewFlagSet("secure", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8888", "listen address")
	fs.StringVar(&c.origins, "origins", "", "comma-separated extra allowed Origin host patterns, e.g. app.example.com,*.example.org")
	fs.Int64Var(&c.readLimit, "read-limit", wsguard.DefaultReadLimit, "largest message in bytes")
	fs.Float64Var(&c.rate, "rate", wsguard.DefaultMessageRate, "messages per second per connection")
	fs.IntVar(&c.burst, "burst", wsguard.DefaultMessageBurst, "message burst per connection")
	fs.IntVar(&c.maxConnsPerIP, "max-conns-per-ip", wsguard.DefaultMaxConnsPerIP, "open connections per client IP")
	fs.DurationVar(&c.idleTimeout, "idle-timeout", wsguard.DefaultIdleTimeout, "close connections silent this long")
	fs.DurationVar(&c.pingInterval, "ping-interval", wsguard.DefaultPingInterval, "ping connections quiet this long")
	fs.StringVar(&c.logFile, "log-file", "", "JSON-lines log file (stderr when empty)")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 5*time.Second, "how long to drain connections on SIGTERM")
	fs.DurationVar(&c.authTimeout, "auth-timeout", auth.DefaultAuthTimeout, "how long a client without a handshake token has to send it")
	fs.StringVar(&c.issuer, "issuer", "", "required iss claim (none when empty)")
	fs.StringVar(&c.audience, "audience", "", "required aud claim (none when empty)")
	fs.StringVar(&c.subjectClaim, "subject-claim", "sub", "the claim that carries the subject, a string or an integer (e.g. user_id)")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at /metrics on this address (off when empty)")
	fs.StringVar(&c.redisAddr, "redis-addr", "", "Redis host:port (or Unix socket path) shared by all instances for revocations, connection caps and handshake rate (per instance when empty)")
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

// echo answers each message with "Server received: " and the message.
func echo(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
	return c.Send(ctx, m.Type, append([]byte("Server received: "), m.Data...))
}

func greet(ctx context.Context, c *wsguard.Conn, _ *auth.Principal) error {
	return c.SendText(ctx, "Authenticated!")
}

// newServer returns the HTTP handler serving the socket at / and the
// WebSocket server behind it, for Shutdown.
func newServer(c config) (http.Handler, *wsguard.Server, error) {
	h, ws, _, err := newServerSessions(c)
	return h, ws, err
}

// newServerSessions is newServer also returning the sessions, whose
// subjects a shared revocation closes.
func newServerSessions(c config) (http.Handler, *wsguard.Server, *auth.Sessions, error) {
	vopts := []auth.VerifierOption{auth.WithLeeway(c.leeway), auth.WithSubjectClaim(c.subjectClaim)}
	if c.issuer != "" {
		vopts = append(vopts, auth.WithIssuer(c.issuer))
	}
	if c.audience != "" {
		vopts = append(vopts, auth.WithAudience(c.audience))
	}
	v, err := auth.NewVerifier(jwa.HS256(), c.secret, vopts...)
	if err != nil {
		return nil, nil, nil, err
	}
	sopts := []auth.Option{
		auth.WithFirstMessage(c.authTimeout),
		auth.OnAuthenticated(greet),
	}
	var shared []wsguard.Option
	if c.store != nil {
		sopts = append(sopts, auth.WithRevoker(c.store.Revoker(), 0))
		shared = append(shared,
			wsguard.WithConnStore(c.store.Conns()),
			wsguard.WithHandshakeStore(c.store.Handshakes()))
	}
	if c.observer != nil {
		shared = append(shared, wsguard.WithObserver(c.observer))
	}
	sessions := auth.NewSessions(v, sopts...)
	opts := append(sessions.Options(), shared...)
	opts = append(opts,
		wsguard.WithLogger(c.logger),
		wsguard.WithSubprotocols("wsguard.v1"),
	)
	opts = append(opts, flagOptions(c)...)
	ws := wsguard.New(wsguard.HandlerFunc(echo), opts...)
	mux := http.NewServeMux()
	mux.Handle("/{$}", ws)
	return mux, ws, sessions, nil
}

// run serves until ctx ends (SIGINT, SIGTERM), then drains: every
// connection gets 1001, stragglers are dropped after the shutdown timeout.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	c.logger = errlog.NewLogger(stderr, slog.LevelInfo)
	if c.logFile != "" {
		l, f, err := errlog.OpenFile(c.logFile, slog.LevelInfo)
		if err != nil {
			return err
		}
		defer f.Close()
		c.logger = l
	}
	demo := false
	if s := getenv(secretEnv); s != "" {
		c.secret = []byte(s)
		if len(c.secret) < 32 {
			return fmt.Errorf("%s must be at least 32 bytes, got %d", secretEnv, len(c.secret))
		}
	} else {
		demo = true
		c.secret = make([]byte, 32)
		_, _ = rand.Read(c.secret)
	}
	if c.metricsAddr != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		obs, err := prom.New(reg)
		if err != nil {
			return err
		}
		c.observer = obs
		addr, stopMetrics, err := prom.Listen(c.metricsAddr, reg, c.logger)
		if err != nil {
			return err
		}
		defer stopMetrics()
		fmt.Fprintf(stdout, "secure: metrics at http://%s/metrics\n", addr)
	}
	if c.redisAddr != "" {
		opts := &redis.Options{Addr: c.redisAddr}
		if strings.HasPrefix(c.redisAddr, "/") {
			opts.Network = "unix" // a socket path
		}
		rc := redis.NewClient(opts)
		defer rc.Close()
		c.store = redisstore.New(rc)
	}
	h, ws, sessions, err := newServerSessions(c)
	if err != nil {
		return err
	}
	if c.store != nil {
		// Subjects revoked by any instance lose their connections here too.
		stop, err := c.store.Revoker().Subscribe(ctx, func(sub string) { sessions.CloseSubject(sub) })
		if err != nil {
			return err
		}
		defer stop()
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	// Clients send tokens: Serve warns when they would cross the network
	// in clear.
	scheme := "ws"
	sopts := []wsguard.ServeOption{wsguard.WithDrain(ws), wsguard.WithShutdownTimeout(c.shutdownTimeout), wsguard.WithCredentials()}
	if c.tlsCert != "" {
		scheme, sopts = "wss", append(sopts, wsguard.WithTLS(c.tlsCert, c.tlsKey))
	}
	url := fmt.Sprintf("%s://%s/", scheme, ln.Addr())
	fmt.Fprintf(stdout, "secure: listening on %s\n", url)
	if demo {
		if err := printDemo(stdout, c, url); err != nil {
			ln.Close()
			return err
		}
	}
	// Serve bounds every HTTP connection's life and, when ctx ends,
	// returns only once the WebSocket connections are drained. It returns
	// at once if the certificate pair does not load.
	return wsguard.Serve(ctx, ln, h, sopts...)
}

// printDemo prints a token valid with the made-up key, and how to use it.
// It goes to stdout, for the person who started the server, never to the
// log.
func printDemo(stdout io.Writer, c config, url string) error {
	claims := auth.Claims{Subject: "demo", Issuer: c.issuer, Expiry: time.Now().Add(demoTTL), IssuedAt: time.Now()}
	if c.audience != "" {
		claims.Audience = []string{c.audience}
	}
	if c.subjectClaim != "sub" {
		claims.Subject, claims.Extra = "", map[string]any{c.subjectClaim: "demo"}
	}
	tok, err := auth.Sign(jwa.HS256(), c.secret, claims)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "secure: %s is not set; this run signs with a random key. Demo token (sub \"demo\", valid for an hour):\n%s\n",
		secretEnv, string(tok))
	ca := ""
	if c.tlsCert != "" {
		ca = localca.CABeside(c.tlsCert)
	}
	caFlag, caEnv := "", ""
	if ca != "" {
		caFlag, caEnv = " -ca "+ca, "SSL_CERT_FILE="+ca+" "
	}
	fmt.Fprintf(stdout, "secure: try it from the repository root (type lines, Ctrl-D to quit): go run ./examples/secure/client -url %s%s -token %s\n", url, caFlag, string(tok))
	fmt.Fprintf(stdout, "secure: or with websocat: %swebsocat -H 'Authorization: Bearer %s' %s\n", caEnv, string(tok), url)
	return nil
}
