package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"

	"github.com/wsguard/kit/auth"
	"github.com/wsguard/kit/wsguard"
)

// KnownTokens is how many distinct clients, each with its own token, a
// reconnect storm cycles through.
const KnownTokens = 64

// StormWorkers is how many clients of a storm connect at once.
const StormWorkers = 8

// HandshakeVariant is one server under a reconnect storm: clients that
// connect, complete the WebSocket handshake and drop the connection.
type HandshakeVariant struct {
	// Name is the variant's row name: "coder" (the bare upgrade, the
	// reference), "guard" (every default guard, no token), or an
	// algorithm, verifying every token in full ("HS256") or remembering
	// verified tokens ("HS256-cached").
	Name string
	// Handler returns a fresh server.
	Handler func() http.Handler
	// Headers returns the handshake headers of the storm's clients, one
	// per known token; nil for the variants without tokens.
	Headers func() []http.Header
}

// signer is an algorithm with a key pair.
type signer struct {
	alg       jwa.SignatureAlgorithm
	priv, pub any
}

// signers returns the handshake variants' keys. They are derived from
// fixed bytes, not generated, because the load command signs tokens in
// one process and verifies them in another. Benchmark keys only.
var signers = sync.OnceValue(func() []signer {
	ec, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), []byte("wsguard-bench-es256-key-32-bytes"))
	if err != nil {
		panic(err)
	}
	ed := ed25519.NewKeyFromSeed([]byte("wsguard-bench-eddsa-seed-32bytes"))
	return []signer{
		{jwa.HS256(), hs256Key, hs256Key},
		{jwa.ES256(), ec, &ec.PublicKey},
		{jwa.EdDSA(), ed, ed.Public()},
	}
})

// HandshakeVariants returns the handshake variants, the reference first.
func HandshakeVariants() []HandshakeVariant {
	vs := []HandshakeVariant{
		{Name: Coder.Name, Handler: Coder.Handler},
		{Name: Guard.Name, Handler: guardServer},
	}
	for _, s := range signers() {
		for _, cached := range []bool{false, true} {
			name, size := s.alg.String(), 0
			if cached {
				name, size = name+"-cached", auth.DefaultVerifiedCacheSize
			}
			vs = append(vs, HandshakeVariant{
				Name:    name,
				Handler: func() http.Handler { return authServer(s, size) },
				Headers: func() []http.Header { return tokenHeaders(s) },
			})
		}
	}
	return vs
}

// authServer is the guarded echo behind auth.Sessions, verifying tokens
// with s's key and a verified-token cache of the given size.
func authServer(s signer, cacheSize int) http.Handler {
	v, err := auth.NewVerifier(s.alg, s.pub, auth.WithVerifiedCache(cacheSize))
	if err != nil {
		panic(err)
	}
	sessions := auth.NewSessions(v)
	echo := wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		return c.Send(ctx, m.Type, m.Data)
	})
	return wsguard.New(echo, append(GuardOptions(), sessions.Options()...)...)
}

// tokenHeaders returns the Authorization headers of KnownTokens clients,
// each with its own token signed by s.
func tokenHeaders(s signer) []http.Header {
	hs := make([]http.Header, KnownTokens)
	for i := range hs {
		tok, err := auth.Sign(s.alg, s.priv, auth.Claims{
			Subject: fmt.Sprintf("client-%d", i),
			Expiry:  time.Now().Add(time.Hour),
			ID:      fmt.Sprintf("bench-%d", i),
		})
		if err != nil {
			panic(err)
		}
		hs[i] = http.Header{"Authorization": {"Bearer " + string(tok)}}
	}
	return hs
}

// Storm runs n handshakes in all against wsURL from StormWorkers clients
// at once, the i-th handshake presenting headers[i % len(headers)] (none
// when headers is empty), and returns the wall time taken. Each client
// drops its connection as soon as the handshake completes ([Client.Close]).
func Storm(wsURL string, headers []http.Header, n int) (time.Duration, error) {
	var next atomic.Int64
	var failed sync.Mutex
	var first error
	start := time.Now()
	var wg sync.WaitGroup
	for range StormWorkers {
		wg.Go(func() {
			for {
				k := int(next.Add(1)) - 1
				if k >= n {
					return
				}
				var h http.Header
				if len(headers) > 0 {
					h = headers[k%len(headers)]
				}
				if err := handshake(wsURL, h); err != nil {
					failed.Lock()
					if first == nil {
						first = err
					}
					failed.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start), first
}

func handshake(wsURL string, h http.Header) error {
	c, err := Dial(wsURL, h, nil)
	if err != nil {
		return err
	}
	return c.Close()
}
