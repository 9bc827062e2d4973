package auth_test

import (
	"fmt"
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
