package auth_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"

	"github.com/wsguard/kit/auth"
)

// TestConstructorsRefuseMistakesAtStartUp: the constructors that return an
// error report a mistake through it, those that do not panic naming the
// call.
func TestConstructorsRefuseMistakesAtStartUp(t *testing.T) {
	t.Parallel()
	hs := func() *auth.Verifier {
		v, err := auth.NewVerifier(jwa.HS256(), secret)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	verifier := func(o auth.VerifierOption) func() error {
		return func() error { _, err := auth.NewVerifier(jwa.HS256(), secret, o); return err }
	}
	// A JWKS verifier's options are checked before its first fetch, which
	// fails here: nothing serves the URL.
	jwks := func(o auth.VerifierOption) func() error {
		return func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, err := auth.NewJWKSVerifier(ctx, "http://127.0.0.1:1/jwks.json", o)
			if err != nil && !strings.HasPrefix(err.Error(), "auth: With") {
				return nil
			}
			return err
		}
	}
	sessions := func(o auth.Option) func() error {
		return func() error { auth.NewSessions(hs(), o); return nil }
	}
	tests := []struct {
		name string
		f    func() error
		want string // the error, or the panic prefixed "panic: "; "" when accepted
	}{
		{"NewSessions(nil)", func() error { auth.NewSessions(nil); return nil }, "panic: auth: NewSessions(nil, ...): needs a Verifier"},
		{"Middleware(nil)", func() error { auth.Middleware(nil); return nil }, "panic: auth: NewSessions(nil, ...): needs a Verifier"},
		{"NewVerifier with a JWKS option", func() error {
			_, err := auth.NewVerifier(jwa.HS256(), secret, auth.WithJWKSFetchTimeout(time.Second))
			return err
		}, "auth: WithJWKSFetchTimeout applies to NewJWKSVerifier only"},
		{"NewKeySetVerifier(nil)", func() error { _, err := auth.NewKeySetVerifier(nil); return err }, "auth: empty key set"},
		{"WithVerifierClock(nil) is time.Now", func() error {
			_, err := auth.NewVerifier(jwa.HS256(), secret, auth.WithVerifierClock(nil))
			return err
		}, ""},

		{"WithIssuer", verifier(auth.WithIssuer("https://id.example.com")), ""},
		{`WithIssuer("")`, verifier(auth.WithIssuer("")), `auth: WithIssuer(""): needs an issuer; leave the option out to accept any`},
		{"WithAudience", verifier(auth.WithAudience("chat")), ""},
		{`WithAudience("")`, verifier(auth.WithAudience("")), `auth: WithAudience(""): needs an audience; leave the option out to accept any`},
		{"WithRequiredClaims()", verifier(auth.WithRequiredClaims()), ""},
		{`WithRequiredClaims("jti", "")`, verifier(auth.WithRequiredClaims("jti", "")), `auth: WithRequiredClaims(""): needs a claim name`},
		{"WithLeeway(0) is none", verifier(auth.WithLeeway(0)), ""},
		{"WithLeeway(-1s)", verifier(auth.WithLeeway(-time.Second)), "auth: WithLeeway(-1s): must be >= 0 (0: no leeway)"},
		{"WithMaxLifetime(0) is no maximum", verifier(auth.WithMaxLifetime(0)), ""},
		{"WithMaxLifetime(-1h)", verifier(auth.WithMaxLifetime(-time.Hour)), "auth: WithMaxLifetime(-1h0m0s): must be >= 0 (0: no maximum)"},
		{"WithMaxTokenSize(0) is the default", verifier(auth.WithMaxTokenSize(0)), ""},
		{"WithMaxTokenSize(-1)", verifier(auth.WithMaxTokenSize(-1)), "auth: WithMaxTokenSize(-1): must be >= 0 (0: the default)"},
		{"WithVerifiedCache(0) is off", verifier(auth.WithVerifiedCache(0)), ""},
		{"WithVerifiedCache(-1)", verifier(auth.WithVerifiedCache(-1)), "auth: WithVerifiedCache(-1): must be >= 0 (0: no cache)"},
		{"WithSubjectClaim(user_id)", verifier(auth.WithSubjectClaim("user_id")), ""},
		{`WithSubjectClaim("")`, verifier(auth.WithSubjectClaim("")), "auth: WithSubjectClaim needs a claim name"},
		{"WithSubjectClaim(exp)", verifier(auth.WithSubjectClaim("exp")), `auth: WithSubjectClaim("exp"): the registered claim exp cannot carry the subject`},
		{"WithJWKSClient(nil) is the default client", jwks(auth.WithJWKSClient(nil)), ""},
		{"WithJWKSFetchTimeout(0) is the default", jwks(auth.WithJWKSFetchTimeout(0)), ""},
		{"WithJWKSFetchTimeout(-1s)", jwks(auth.WithJWKSFetchTimeout(-time.Second)), "auth: WithJWKSFetchTimeout(-1s): must be >= 0 (0: the default)"},
		{"WithJWKSMaxSize(0) is the default", jwks(auth.WithJWKSMaxSize(0)), ""},
		{"WithJWKSMaxSize(-1)", jwks(auth.WithJWKSMaxSize(-1)), "auth: WithJWKSMaxSize(-1): must be >= 0 (0: the default)"},
		{"WithJWKSRefresh(0, 0) is the default", jwks(auth.WithJWKSRefresh(0, 0)), ""},
		{"WithJWKSRefresh(-1s, 0)", jwks(auth.WithJWKSRefresh(-time.Second, 0)), "auth: WithJWKSRefresh(-1s, 0s): both must be >= 0 (0: the default)"},

		{"WithCookie", sessions(auth.WithCookie("session")), ""},
		{`WithCookie("")`, sessions(auth.WithCookie("")), `panic: auth: WithCookie(""): needs a cookie name`},
		{"InsecureQueryToken", sessions(auth.InsecureQueryToken("access_token")), ""},
		{`InsecureQueryToken("")`, sessions(auth.InsecureQueryToken("")), `panic: auth: InsecureQueryToken(""): needs a parameter name`},
		{"WithFirstMessage(0) is the default", sessions(auth.WithFirstMessage(0)), ""},
		{"WithFirstMessage(-1s)", sessions(auth.WithFirstMessage(-time.Second)), "panic: auth: WithFirstMessage(-1s): must be >= 0 (0: the default)"},
		{"WithRevoker(r, 0) is the default interval", sessions(auth.WithRevoker(auth.NewMemoryRevoker(), 0)), ""},
		{"WithRevoker(nil, 0)", sessions(auth.WithRevoker(nil, 0)), "panic: auth: WithRevoker(nil, ...): needs a Revoker"},
		{"WithRevoker(r, -1s)", sessions(auth.WithRevoker(auth.NewMemoryRevoker(), -time.Second)), "panic: auth: WithRevoker(..., -1s): the interval must be >= 0 (0: the default)"},
		{"OnAuthenticated(nil)", sessions(auth.OnAuthenticated(nil)), "panic: auth: OnAuthenticated(nil): needs a function"},
		{"Middleware refuses a bad option too", func() error {
			auth.Middleware(hs(), auth.WithCookie(""))
			return nil
		}, `panic: auth: WithCookie(""): needs a cookie name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got string
			func() {
				defer func() {
					if p := recover(); p != nil {
						got = fmt.Sprint("panic: ", p)
					}
				}()
				if err := tt.f(); err != nil {
					got = err.Error()
				}
			}()
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
