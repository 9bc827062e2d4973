package bench_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/wsguard/kit/internal/bench"
	"github.com/wsguard/kit/validate"
	"github.com/wsguard/kit/wsguard"
)

// sealedRoundTrip is one message out and its echo back, as a client
// does it: sealing, sending, reading, opening.
type sealedRoundTrip func(ctx context.Context) error

// sealedPair starts a guarded echo server and a connection to it. With a
// key, the server opens messages with validate.Sealed and seals the echo
// back with Sealed.Send, and the client seals and opens with
// validate.SealClient; without one, both send the body as it is.
func sealedPair(tb testing.TB, key jwk.Key, body []byte) sealedRoundTrip {
	tb.Helper()
	// A 32 KiB body seals to about 44 KiB: the same raised limit for both.
	opts := append(bench.GuardOptions(), wsguard.WithReadLimit(64<<10))
	echo := wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		return c.Send(ctx, m.Type, m.Data)
	})
	var h wsguard.Handler = echo
	var client *validate.SealClient
	if key != nil {
		set := jwk.NewSet()
		if err := set.AddKey(key); err != nil {
			tb.Fatal(err)
		}
		sealed := validate.NewSealed(set)
		h = wsguard.NewChain(sealed.Middleware).Then(wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
			return sealed.Send(ctx, c, m.Data)
		}))
		pub := key
		if _, ok := key.(jwk.ECDSAPrivateKey); ok {
			var err error
			if pub, err = jwk.PublicKeyOf(key); err != nil {
				tb.Fatal(err)
			}
		}
		var err error
		if client, err = validate.NewSealClient(pub, nil); err != nil {
			tb.Fatal(err)
		}
	}
	srv := wsguard.New(h, opts...)
	ts := httptest.NewServer(srv)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		ts.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	conn.SetReadLimit(64 << 10)
	tb.Cleanup(func() { _ = conn.CloseNow() })
	return func(ctx context.Context) error {
		msg := body
		if client != nil {
			if msg, err = client.Seal(body); err != nil {
				return err
			}
		}
		if err := conn.Write(ctx, websocket.MessageText, msg); err != nil {
			return err
		}
		_, reply, err := conn.Read(ctx)
		if err != nil {
			return err
		}
		if client != nil {
			if reply, err = client.Open(reply); err != nil {
				return err
			}
		}
		if !bytes.Equal(reply, body) {
			return fmt.Errorf("echo of %d bytes, sent %d", len(reply), len(body))
		}
		return nil
	}
}

// sealedKeys are the server keys of the sealed variants, by name.
func sealedKeys(tb testing.TB) []struct {
	name string
	key  jwk.Key
} {
	tb.Helper()
	pk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	ec, err := jwk.Import(pk)
	if err != nil {
		tb.Fatal(err)
	}
	shared, err := jwk.Import(bytes.Repeat([]byte{5}, 32))
	if err != nil {
		tb.Fatal(err)
	}
	for _, k := range []jwk.Key{ec, shared} {
		if err := k.Set(jwk.KeyIDKey, "bench"); err != nil {
			tb.Fatal(err)
		}
	}
	return []struct {
		name string
		key  jwk.Key
	}{{"plain", nil}, {"sealed-dir", shared}, {"sealed-ecdh", ec}}
}

func TestSealedRoundTrips(t *testing.T) {
	t.Parallel()
	for _, v := range sealedKeys(t) {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			rt := sealedPair(t, v.key, bench.JSON(32<<10))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for range 3 {
				if err := rt(ctx); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSealed is a round trip over one connection, client side
// included: plain JSON against the same JSON sealed with a shared key
// ("dir") and with ECDH-ES+A256KW. One op is one message and its echo;
// allocs/op counts the client's and the server's. The sealed variants
// report x-plain, their throughput over plain round trips interleaved
// with theirs.
func BenchmarkSealed(b *testing.B) {
	for _, size := range []int{1 << 10, 32 << 10} {
		body := bench.JSON(size)
		keys := sealedKeys(b)
		for _, v := range keys {
			b.Run(fmt.Sprintf("%s/%s", sizeName(size), v.name), func(b *testing.B) {
				ctx := context.Background()
				run := func(rt sealedRoundTrip) func(int) time.Duration {
					return func(n int) time.Duration {
						start := time.Now()
						for range n {
							if err := rt(ctx); err != nil {
								b.Fatal(err)
							}
						}
						return time.Since(start)
					}
				}
				var reference func(int) time.Duration
				if v.key != nil {
					reference = run(sealedPair(b, nil, body))
				}
				rt := sealedPair(b, v.key, body)
				if err := rt(ctx); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.ResetTimer()
				refTime, varTime := interleave(b, b.N >= 8, reference, run(rt))
				b.StopTimer()
				if reference != nil {
					b.ReportMetric(refTime.Seconds()/varTime.Seconds(), "x-plain")
				}
			})
		}
	}
}
