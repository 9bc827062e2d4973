package bench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/wsguard/kit/validate"
	"github.com/wsguard/kit/wsguard"
)

// SealedSizes are the body sizes of the sealed benchmark.
var SealedSizes = []int{1 << 10, 32 << 10}

// sealedReadLimit is the read limit of both ends of a sealed round trip:
// a 32 KiB body seals to about 44 KiB, and plain gets the same limit.
const sealedReadLimit = 64 << 10

// SealedVariant is one way of sending a body over a guarded echo.
type SealedVariant struct {
	// Name is the variant's row name: "plain" (the body as it is, the
	// reference), "sealed-dir" (a shared key) or "sealed-ecdh"
	// (ECDH-ES+A256KW with an EC P-256 key).
	Name string
	// Key is the server's key; nil for plain.
	Key jwk.Key
}

// SealedVariants returns the sealed variants, the reference first. The EC
// key is new on every call; both keys are for benchmarks only.
func SealedVariants() ([]SealedVariant, error) {
	pk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	ec, err := jwk.Import(pk)
	if err != nil {
		return nil, err
	}
	shared, err := jwk.Import(bytes.Repeat([]byte{5}, 32))
	if err != nil {
		return nil, err
	}
	for _, k := range []jwk.Key{ec, shared} {
		if err := k.Set(jwk.KeyIDKey, "bench"); err != nil {
			return nil, err
		}
	}
	return []SealedVariant{{"plain", nil}, {"sealed-dir", shared}, {"sealed-ecdh", ec}}, nil
}

// SealedEcho is one connection to a guarded echo server of its own, both
// in this process. With a key, the server opens messages with
// validate.Sealed and seals the echo back with Sealed.Send, and the client
// seals and opens with validate.SealClient; without one, both send the
// body as it is.
type SealedEcho struct {
	srv    *wsguard.Server
	ts     *httptest.Server
	conn   *websocket.Conn
	client *validate.SealClient
	body   []byte
	rtts   []time.Duration // since ResetLatency
}

// OpenSealed starts v's server and connects to it, to send body on every
// round trip.
func OpenSealed(v SealedVariant, body []byte) (*SealedEcho, error) {
	opts := append(GuardOptions(), wsguard.WithReadLimit(sealedReadLimit))
	var h wsguard.Handler = wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		return c.Send(ctx, m.Type, m.Data)
	})
	e := &SealedEcho{body: body}
	if v.Key != nil {
		set := jwk.NewSet()
		if err := set.AddKey(v.Key); err != nil {
			return nil, err
		}
		sealed := validate.NewSealed(set)
		h = wsguard.NewChain(sealed.Middleware).Then(wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
			return sealed.Send(ctx, c, m.Data)
		}))
		pub := v.Key
		if _, ok := v.Key.(jwk.ECDSAPrivateKey); ok {
			var err error
			if pub, err = jwk.PublicKeyOf(v.Key); err != nil {
				return nil, err
			}
		}
		var err error
		if e.client, err = validate.NewSealClient(pub, nil); err != nil {
			return nil, err
		}
	}
	e.srv = wsguard.New(h, opts...)
	e.ts = httptest.NewServer(e.srv)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.ts.URL, "http"), nil)
	if err != nil {
		e.Close()
		return nil, err
	}
	conn.SetReadLimit(sealedReadLimit)
	e.conn = conn
	return e, nil
}

// RoundTrip sends the body, sealed or not, reads the echo, opens it, and
// checks that it is the body.
func (e *SealedEcho) RoundTrip(ctx context.Context) error {
	msg := e.body
	var err error
	if e.client != nil {
		if msg, err = e.client.Seal(e.body); err != nil {
			return err
		}
	}
	if err := e.conn.Write(ctx, websocket.MessageText, msg); err != nil {
		return err
	}
	_, reply, err := e.conn.Read(ctx)
	if err != nil {
		return err
	}
	if e.client != nil {
		if reply, err = e.client.Open(reply); err != nil {
			return err
		}
	}
	if !bytes.Equal(reply, e.body) {
		return fmt.Errorf("bench: echo of %d bytes, sent %d", len(reply), len(e.body))
	}
	return nil
}

// Reserve makes room for the round-trip times of n more round trips, so
// that Run allocates nothing of its own.
func (e *SealedEcho) Reserve(n int) { e.rtts = slices.Grow(e.rtts, n) }

// Run makes n round trips one after the other and returns the wall time
// taken; [SealedEcho.Latency] adds their times.
func (e *SealedEcho) Run(ctx context.Context, n int) (time.Duration, error) {
	start := time.Now()
	t0 := start
	for range n {
		if err := e.RoundTrip(ctx); err != nil {
			return time.Since(start), err
		}
		t1 := time.Now()
		e.rtts = append(e.rtts, t1.Sub(t0))
		t0 = t1
	}
	return time.Since(start), nil
}

// Latency returns the median and 99th percentile round trip of the runs
// since the last ResetLatency.
func (e *SealedEcho) Latency() (p50, p99 time.Duration) {
	return quantiles(slices.Clone(e.rtts))
}

// ResetLatency forgets the recorded round trips.
func (e *SealedEcho) ResetLatency() { e.rtts = e.rtts[:0] }

// Close drops the connection and stops the server.
func (e *SealedEcho) Close() {
	if e.conn != nil {
		_ = e.conn.CloseNow()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = e.srv.Shutdown(ctx)
	e.ts.Close()
}
