// Command chat is a small chat server with a page people can open: typed,
// validated messages routed by type, JWT authentication with in-band
// refresh, and an Origin check that refuses other sites' pages.
//
//	go run ./examples/chat            # http://127.0.0.1:8080/
//	go run ./examples/chat -addr :9000
//	go run ./examples/chat -tls-cert tls/cert.pem -tls-key tls/key.pem   # https://localhost:8080/
//	go run ./examples/chat -redis-addr 127.0.0.1:6379   # rooms shared with other instances
//
// With -tls-cert and -tls-key (PEM files, such as those go run
// ./examples/certs writes) it serves the page over https:// and the socket
// over wss://, and picks up a renewed pair without a restart (every
// minute, or on SIGHUP). Without them it serves http:// and ws://, and
// warns at start-up when the address is reachable from other hosts: the
// tokens would travel in clear unless a TLS-terminating proxy is in
// front.
//
// The page connects to /ws through the client module examples/client
// (served at /wsguard.js) with its token in the subprotocol
// "bearer.<jwt>" beside "chat.v1", joins a room and says things that
// are broadcast to the room with their digest. The room hears who joins
// and leaves, and how many are there. A speaker's name is the "name"
// claim of its token (else its subject), never something a message says.
// A room is a wsguard.Group: a broadcast queues the message to each
// member and waits on none, and a member that does not read is cut (4429)
// when its send queue is full, without delaying the others.
//
// With -redis-addr, instances that share the Redis share their rooms
// (redisstore's groups): a message reaches the room's members on every
// instance, so instances can sit behind one load balancer. Join and leave
// notices, and the count they carry, stay of the members on the instance
// a page is connected to ("3 here"): an exact count across instances would
// need the membership kept in Redis, with a crashed instance's members
// expiring, which this example leaves out. While Redis cannot be reached,
// each instance's rooms go on among its own members, and every message
// that other instances miss is logged at warn level. The instance must
// reach Redis at start-up.
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
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/wsguard"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	tlsCert := flag.String("tls-cert", "", "PEM certificate chain: serve https:// and wss:// (with -tls-key)")
	tlsKey := flag.String("tls-key", "", "PEM private key of -tls-cert")
	redisAddr := flag.String("redis-addr", "", "host:port of a Redis whose other instances share the rooms; none: this instance's rooms only")
	flag.Parse()
	if err := run(*addr, *tlsCert, *tlsKey, *redisAddr); err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
}

var errTLSFlags = errors.New("-tls-cert and -tls-key go together: set both to serve https:// and wss://, or neither for http:// and ws://")

// serveOptions are the Serve options of the TLS flags. The page's
// clients send tokens: Serve warns when they would cross the network in
// clear.
func serveOptions(tlsCert, tlsKey string) ([]wsguard.ServeOption, error) {
	if (tlsCert == "") != (tlsKey == "") {
		return nil, errTLSFlags
	}
	opts := []wsguard.ServeOption{wsguard.WithCredentials()}
	if tlsCert != "" {
		opts = append(opts, wsguard.WithTLS(tlsCert, tlsKey))
	}
	return opts, nil
}

func run(addr, tlsCert, tlsKey, redisAddr string) error {
	opts, err := serveOptions(tlsCert, tlsKey)
	if err != nil {
		return err
	}
	log := errlog.NewLogger(os.Stderr, slog.LevelInfo)
	cfg := config{logger: log}
	if k := os.Getenv("WSGUARD_CHAT_KEY"); k != "" {
		cfg.key = []byte(k)
	}
	if redisAddr != "" {
		rc, err := dialRedis(redisAddr)
		if err != nil {
			return err
		}
		defer rc.Close()
		cfg.redis = rc
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
	scheme := "http"
	if tlsCert != "" {
		scheme = "https"
	}
	log.Info("chat is listening", "url", scheme+"://"+ln.Addr().String()+"/")
	// Serve bounds every HTTP connection's life and, on a signal, closes
	// the sockets (1001, which the page answers by reconnecting, to a
	// listener already closed) and returns once they are all closed.
	err = wsguard.Serve(ctx, ln, a, append(opts, wsguard.WithDrain(a.ws))...)
	return errors.Join(err, a.closeRooms())
}

// dialRedis returns a client of the Redis at addr once it answers: a
// wrong address is a mistake to report at start-up, not a fail mode.
func dialRedis(addr string) (*redis.Client, error) {
	rc := redis.NewClient(&redis.Options{Addr: addr})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rc.Ping(ctx).Err(); err != nil {
		_ = rc.Close()
		return nil, fmt.Errorf("-redis-addr %s: %w", addr, err)
	}
	return rc, nil
}
