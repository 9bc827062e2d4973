package auth_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/wsguard/kit/auth"
)

// jwksServer serves a key set that the test can replace, counting fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	body    []byte
	fetches atomic.Int32
}

func newJWKSServer(t *testing.T, keys ...jwk.Key) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.publish(t, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		body := s.body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) publish(t *testing.T, keys ...jwk.Key) {
	t.Helper()
	set := jwk.NewSet()
	for _, k := range keys {
		if err := set.AddKey(k); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.body = b
	s.mu.Unlock()
}

func TestJWKSRotation(t *testing.T) {
	t.Parallel()
	priv1, pub1 := rsaJWK(t, "k1", jwa.RS256())
	priv2, pub2 := rsaJWK(t, "k2", jwa.RS256())
	srv := newJWKSServer(t, pub1)

	var skew atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	v, err := auth.NewJWKSVerifier(context.Background(), srv.URL,
		auth.WithJWKSClient(srv.Client()), auth.WithJWKSRefresh(time.Hour, time.Minute), auth.WithVerifierClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := v.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	fetches := srv.fetches.Load
	verify := func(key jwk.Key) (auth.Token, error) {
		tok := must(auth.Sign(jwa.RS256(), key, valid("alice", time.Hour)))
		_, err := v.Verify(context.Background(), tok)
		return tok, err
	}
	if _, err := verify(priv1); err != nil {
		t.Fatalf("k1: %v", err)
	}

	// The identity provider rotates k2 in. Within the cooldown of the
	// first fetch the verifier does not fetch again.
	srv.publish(t, pub1, pub2)
	tok, err := verify(priv2)
	checkRefused(t, err, tok, "invalid token", "unknown kid")
	if n := fetches(); n != 1 {
		t.Fatalf("fetches = %d, want 1 (cooldown)", n)
	}

	// Past the cooldown, the unknown kid causes one fetch that finds it,
	// without a restart.
	skew.Store(int64(61 * time.Second))
	if _, err := verify(priv2); err != nil {
		t.Fatalf("k2 after rotation: %v", err)
	}
	if n := fetches(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}

	// A flood of made-up kids costs no fetch within the cooldown.
	priv9, _ := rsaJWK(t, "k9", jwa.RS256())
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			tok, err := verify(priv9)
			checkRefused(t, err, tok, "invalid token", "unknown kid")
		})
	}
	wg.Wait()
	if n := fetches(); n != 2 {
		t.Fatalf("fetches = %d after a flood of unknown kids, want 2", n)
	}

	// k1 rotated out: once the set is fetched again it is refused.
	srv.publish(t, pub2)
	skew.Store(int64(3 * time.Minute))
	tok, err = verify(priv9)
	checkRefused(t, err, tok, "invalid token", "unknown kid")
	if n := fetches(); n != 3 {
		t.Fatalf("fetches = %d, want 3", n)
	}
	tok, err = verify(priv1)
	checkRefused(t, err, tok, "invalid token", "unknown kid")
}

func TestJWKSBounds(t *testing.T) {
	t.Parallel()
	_, pub := rsaJWK(t, "k1", jwa.RS256())
	noAlg := must(jwk.Import(&rsaKey().PublicKey))
	_ = noAlg.Set(jwk.KeyIDKey, "x")

	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); slow.Close() })
	big := newJWKSServer(t, pub)
	missingAlg := newJWKSServer(t, noAlg)

	tests := []struct {
		name string
		srv  *httptest.Server
		opts []auth.VerifierOption
		want string
	}{
		{"body over the cap", big.Server, []auth.VerifierOption{auth.WithJWKSMaxSize(64)}, "exceeded max size"},
		{"slow server", slow, []auth.VerifierOption{auth.WithJWKSFetchTimeout(200 * time.Millisecond)}, "deadline"},
		{"key without alg", missingAlg.Server, nil, "no alg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			opts := append([]auth.VerifierOption{auth.WithJWKSClient(tt.srv.Client())}, tt.opts...)
			v, err := auth.NewJWKSVerifier(context.Background(), tt.srv.URL, opts...)
			if err == nil {
				_ = v.Close()
				t.Fatal("NewJWKSVerifier succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one saying %q", err, tt.want)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
}
