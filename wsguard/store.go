package wsguard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/wsguard/kit/errlog"
)

// ConnStore keeps connection counts shared by several servers (instances
// behind a load balancer), so that the caps of [WithMaxConns] hold for all
// of them together. The in-memory [ConnLimit] each server keeps is the
// default and stays in force beside it, as a per-instance backstop. A
// Redis implementation is in the module's store/redisstore package.
type ConnStore interface {
	// AcquireConn takes a slot for client under a cap of maxTotal
	// connections in all and maxClient for client. Over a cap it returns
	// an error wrapping [ErrClientCap] or [ErrTotalCap]; any other error
	// refuses the handshake as errlog.Unavailable. What it does when the
	// shared state cannot be reached is the implementation's documented
	// choice. release, never nil on success, frees the slot; calling it
	// again does nothing.
	AcquireConn(ctx context.Context, client string, maxTotal, maxClient int) (release func(), err error)
}

// HandshakeStore keeps handshake rates shared by several servers, so that the
// rate of [WithHandshakeRate] holds for all of them together. The
// in-memory [HandshakeLimit] each server keeps stays in force beside it.
type HandshakeStore interface {
	// AllowHandshake takes a token from client's bucket of perSecond
	// tokens per second and the given burst. It returns 0, or how long
	// until the client has a token again. An error refuses the handshake
	// as errlog.Unavailable.
	AllowHandshake(ctx context.Context, client string, perSecond float64, burst int) (retryAfter time.Duration, err error)
}

// The caps a [ConnStore] reports as full.
var (
	ErrClientCap = errors.New("per-client connection cap reached")
	ErrTotalCap  = errors.New("total connection cap reached")
)

// WithConnStore shares the connection caps of [WithMaxConns] through st.
// nil is refused.
func WithConnStore(st ConnStore) Option {
	return func(c *config) {
		if st == nil {
			misconfigured("WithConnStore(nil)", "needs a ConnStore")
		}
		c.connStore = st
	}
}

// WithHandshakeStore shares the handshake rate of [WithHandshakeRate]
// through st. nil is refused.
func WithHandshakeStore(st HandshakeStore) Option {
	return func(c *config) {
		if st == nil {
			misconfigured("WithHandshakeStore(nil)", "needs a HandshakeStore")
		}
		c.handshakeStore = st
	}
}

// sharedKey is the client's key in a shared store: its address, or its
// IPv6 /64, as the in-memory limits count.
func sharedKey(r *http.Request) string {
	return clientKey(ClientIP(r)).String()
}

// checkShared takes a handshake token from the shared store.
func (l *HandshakeLimit) checkShared(r *http.Request) error {
	wait, err := l.store.AllowHandshake(r.Context(), sharedKey(r), l.limitPerSecond(), l.burst)
	switch {
	case err != nil:
		return errlog.NewError(errlog.Unavailable, fmt.Errorf("shared handshake rate: %w", err))
	case wait > 0:
		return retryError(errlog.ResourceExhausted, min(wait, maxRetryAfter),
			fmt.Errorf("client %s over the shared %g handshakes/s (burst %d)", sharedKey(r), l.limitPerSecond(), l.burst))
	}
	return nil
}

// acquireShared takes a slot from the shared connection store.
func (l *ConnLimit) acquireShared(r *http.Request) (func(), error) {
	release, err := l.store.AcquireConn(r.Context(), sharedKey(r), l.maxTotal, l.maxClient)
	switch {
	case err == nil:
		return release, nil
	case errors.Is(err, ErrClientCap):
		return nil, retryError(errlog.ResourceExhausted, connRetryAfter, err)
	case errors.Is(err, ErrTotalCap):
		return nil, retryError(errlog.Unavailable, connRetryAfter, err)
	}
	return nil, errlog.NewError(errlog.Unavailable, fmt.Errorf("shared connection caps: %w", err))
}

func (l *HandshakeLimit) limitPerSecond() float64 { return float64(l.limit) }
