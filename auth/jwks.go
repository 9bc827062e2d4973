package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/httprc/v3/errsink"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Defaults of [NewJWKSVerifier].
const (
	// DefaultJWKSFetchTimeout bounds one fetch of the key set, so that a
	// slow identity provider cannot hold handshakes.
	DefaultJWKSFetchTimeout = 10 * time.Second
	// DefaultJWKSMaxSize bounds the key set's body: real sets are a few
	// KiB, and jwx's own default is 10 MiB.
	DefaultJWKSMaxSize = 256 << 10
	// DefaultJWKSRefreshCooldown is the least time between two fetches
	// caused by tokens naming an unknown kid, so that a flood of made-up
	// kids costs the identity provider one request per cooldown.
	DefaultJWKSRefreshCooldown = time.Minute
	// DefaultJWKSRefreshInterval is how often the key set is fetched in
	// the background, whatever its Cache-Control says.
	DefaultJWKSRefreshInterval = 15 * time.Minute
)

type jwksConfig struct {
	client   *http.Client
	timeout  time.Duration
	maxSize  int64
	cooldown time.Duration
	interval time.Duration
}

func defaultJWKSConfig() jwksConfig {
	return jwksConfig{
		timeout:  DefaultJWKSFetchTimeout,
		maxSize:  DefaultJWKSMaxSize,
		cooldown: DefaultJWKSRefreshCooldown,
		interval: DefaultJWKSRefreshInterval,
	}
}

// jwksOption returns a VerifierOption that applies to NewJWKSVerifier
// only; the other constructors refuse it by name.
func jwksOption(name string, f func(*verifierConfig)) VerifierOption {
	return func(c *verifierConfig) {
		c.jwksOption = name
		f(c)
	}
}

// WithJWKSClient sets the HTTP client that fetches the key set (for a
// proxy or custom TLS roots). Its redirects are limited as jwk.Fetch
// limits them, and a client without a timeout gets the fetch timeout.
// nil means the default client, as without the option. For
// NewJWKSVerifier only.
func WithJWKSClient(c *http.Client) VerifierOption {
	return jwksOption("WithJWKSClient", func(cfg *verifierConfig) { cfg.jwks.client = c })
}

// WithJWKSFetchTimeout bounds one fetch of the key set; the default is
// [DefaultJWKSFetchTimeout], which zero keeps; a negative one is
// refused. For NewJWKSVerifier only.
func WithJWKSFetchTimeout(d time.Duration) VerifierOption {
	return jwksOption("WithJWKSFetchTimeout", func(c *verifierConfig) {
		switch {
		case d < 0:
			c.refuse(fmt.Sprintf("WithJWKSFetchTimeout(%v)", d), "must be >= 0 (0: the default)")
		case d > 0:
			c.jwks.timeout = d
		}
	})
}

// WithJWKSMaxSize bounds the key set's body, in bytes; the default is
// [DefaultJWKSMaxSize], which zero keeps; a negative size is refused.
// For NewJWKSVerifier only.
func WithJWKSMaxSize(n int64) VerifierOption {
	return jwksOption("WithJWKSMaxSize", func(c *verifierConfig) {
		switch {
		case n < 0:
			c.refuse(fmt.Sprintf("WithJWKSMaxSize(%d)", n), "must be >= 0 (0: the default)")
		case n > 0:
			c.jwks.maxSize = n
		}
	})
}

// WithJWKSRefresh sets how often the key set is fetched in the background
// (interval; the default is [DefaultJWKSRefreshInterval]) and the least
// time between fetches caused by an unknown kid (cooldown; the default is
// [DefaultJWKSRefreshCooldown]). Zero keeps its default; a negative
// value is refused. For NewJWKSVerifier only.
func WithJWKSRefresh(interval, cooldown time.Duration) VerifierOption {
	return jwksOption("WithJWKSRefresh", func(c *verifierConfig) {
		if interval < 0 || cooldown < 0 {
			c.refuse(fmt.Sprintf("WithJWKSRefresh(%v, %v)", interval, cooldown), "both must be >= 0 (0: the default)")
		}
		if interval > 0 {
			c.jwks.interval = interval
		}
		if cooldown > 0 {
			c.jwks.cooldown = cooldown
		}
	})
}

// jwksSource is a remote key set kept by jwx's cache, plus what the cache
// does not do: a fetch when a token names a kid the set lacks (a key
// rotated in since the last fetch), at most once per cooldown.
type jwksSource struct {
	url      string
	cache    *jwk.Cache
	set      jwk.Set // a view of the cache's current set
	cooldown time.Duration
	timeout  time.Duration
	now      func() time.Time

	mu   sync.Mutex // held across an on-demand fetch, so that one runs at a time
	last time.Time  // of the last fetch, for the cooldown
}

// NewJWKSVerifier returns a verifier of tokens signed with a key of the
// JSON Web Key Set at url, kept fresh by jwx's cache in the background.
// The first fetch happens now, bounded by ctx and the fetch timeout, and
// its failure is an error: a verifier without keys would refuse everyone.
// The cache runs until [Verifier.Close].
//
// Keys must carry "alg" and "kid", as for [NewKeySetVerifier]: a first
// set with a key that does not is refused, and such a key fetched later is
// never used. A token naming a kid the set lacks causes one fetch, at most
// once per cooldown ([WithJWKSRefresh]).
func NewJWKSVerifier(ctx context.Context, url string, opts ...VerifierOption) (*Verifier, error) {
	cfg, err := newVerifierConfig(opts)
	if err != nil {
		return nil, err
	}
	j := cfg.jwks
	hc := http.Client{Timeout: j.timeout}
	if j.client != nil {
		hc = *j.client
		if hc.Timeout == 0 {
			hc.Timeout = j.timeout
		}
	}
	first := &firstFetch{}
	// The cache outlives ctx, which bounds only the first fetch.
	cache, err := jwk.NewCache(context.WithoutCancel(ctx),
		httprc.NewClient(httprc.WithWorkers(1), httprc.WithErrorSink(errsink.NewFunc(first.put))))
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS cache: %w", err)
	}
	src := &jwksSource{url: url, cache: cache, cooldown: j.cooldown, timeout: j.timeout, now: cfg.now}
	if err := src.register(ctx, jwk.WrapHTTPClientDefaults(&hc), j, first); err != nil {
		_ = src.close()
		return nil, fmt.Errorf("auth: JWKS %s: %w", url, err)
	}
	return newVerifier(cfg, &Verifier{jwks: src}), nil
}

// firstFetch reports why the first fetch failed: the cache only says it
// is not ready yet, and would keep the caller waiting until ctx ends.
type firstFetch struct {
	mu     sync.Mutex
	err    error
	cancel context.CancelFunc // of the wait for the first fetch; nil after it
}

func (f *firstFetch) put(_ context.Context, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cancel != nil {
		f.err = err
		f.cancel()
	}
}

func (f *firstFetch) wait(ctx context.Context, timeout time.Duration) (context.Context, func() error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	f.mu.Lock()
	f.cancel = cancel
	f.mu.Unlock()
	return ctx, func() error {
		cancel()
		f.mu.Lock()
		defer f.mu.Unlock()
		f.cancel = nil
		return f.err
	}
}

func (s *jwksSource) register(ctx context.Context, hc *http.Client, j jwksConfig, first *firstFetch) error {
	ctx, done := first.wait(ctx, j.timeout)
	err := s.cache.Register(ctx, s.url,
		jwk.WithHTTPClient(hc),
		jwk.WithMaxFetchBodySize(j.maxSize),
		jwk.WithHttprcResourceOption(httprc.WithConstantInterval(j.interval)),
		jwk.WithWaitReady(true),
	)
	if ferr := done(); ferr != nil {
		return ferr
	}
	if err != nil {
		return err
	}
	s.set, err = s.cache.CachedSet(s.url)
	if err != nil {
		return err
	}
	s.last = s.now()
	return checkKeySet(s.set)
}

// lookup returns nil when the set has a key for kid, fetching the set
// again when it has none and the cooldown allows.
func (s *jwksSource) lookup(ctx context.Context, kid string) error {
	if _, ok := s.set.LookupKeyID(kid); ok {
		return nil
	}
	err := s.refresh(ctx)
	if _, ok := s.set.LookupKeyID(kid); ok {
		return nil
	}
	if err != nil {
		return invalidf("unknown kid", fmt.Errorf("%s, and the key set was not fetched again: %w", quote(kid), err))
	}
	return invalidf("unknown kid", fmt.Errorf("%s is not in the key set", quote(kid)))
}

var errCooldown = errors.New("fetched too recently")

// refresh fetches the key set now unless the last fetch is more recent
// than the cooldown. Callers arriving during a fetch wait for it and then
// find the cooldown running, so one fetch serves them all.
func (s *jwksSource) refresh(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if now.Sub(s.last) < s.cooldown {
		return errCooldown
	}
	s.last = now
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err := s.cache.Refresh(ctx, s.url)
	return err
}

func (s *jwksSource) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	return s.cache.Shutdown(ctx)
}

// Close stops the background refresh of a JWKS verifier and waits for it.
// It does nothing for a verifier of a local key or key set.
func (v *Verifier) Close() error {
	if v.jwks == nil {
		return nil
	}
	return v.jwks.close()
}
