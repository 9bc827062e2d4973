package validate_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-playground/validator/v10"

	"github.com/wsguard/kit/validate"
	"github.com/wsguard/kit/wsguard"
)

// panicText runs f and returns what it panicked with, or "" when it
// returned.
func panicText(f func()) (text string) {
	defer func() {
		if p := recover(); p != nil {
			text = fmt.Sprint(p)
		}
	}()
	f()
	return ""
}

type configMsg struct {
	Room string `json:"room" validate:"required"`
}

// TestEveryOptionIsCheckedAtConstruction walks every option and
// constructor of the package with a value it refuses and the edge values
// it accepts.
func TestEveryOptionIsCheckedAtConstruction(t *testing.T) {
	t.Parallel()
	v := validate.New()
	keys := func(context.Context, string) ([]byte, error) { return nil, nil }
	typed := func(context.Context, *wsguard.Conn, configMsg) error { return nil }
	rule := func(validator.FieldLevel) bool { return true }
	tests := []struct {
		name string
		f    func()
		want string // the panic; "" when accepted
	}{
		{"New()", func() { validate.New() }, ""},
		{"WithMaxDepth(1)", func() { validate.New(validate.WithMaxDepth(1)) }, ""},
		{"WithMaxDepth(0)", func() { validate.New(validate.WithMaxDepth(0)) }, "validate: WithMaxDepth(0): must be >= 1"},
		{"WithMaxDepth(-3)", func() { validate.New(validate.WithMaxDepth(-3)) }, "validate: WithMaxDepth(-3): must be >= 1"},
		{"WithRule", func() { validate.New(validate.WithRule("even", rule)) }, ""},
		{"WithRule empty tag", func() { validate.New(validate.WithRule("", rule)) }, `validate: WithRule("", ...): needs a tag`},
		{"WithRule nil", func() { validate.New(validate.WithRule("even", nil)) }, `validate: WithRule("even", nil): needs a function`},
		{"WithRule reserved tag", func() { validate.New(validate.WithRule("omitempty", rule)) }, `validate: WithRule("omitempty", ...): Tag 'omitempty' either contains restricted characters or is the same as a restricted tag needed for normal operation`},

		{"JSON", func() { validate.JSON(v, typed) }, ""},
		{"JSON(nil, h)", func() { validate.JSON(nil, typed) }, "validate: JSON[validate_test.configMsg](nil, h): needs a Validator and a handler"},
		{"JSON(v, nil)", func() { validate.JSON[configMsg](v, nil) }, "validate: JSON[validate_test.configMsg](v, nil): needs a Validator and a handler"},
		{"NewRouter(nil)", func() { validate.NewRouter(nil) }, "validate: NewRouter(nil): needs a Validator"},
		{"Handle", func() { validate.Handle(validate.NewRouter(v), "join", typed) }, ""},
		{"Handle empty type", func() { validate.Handle(validate.NewRouter(v), "", typed) }, `validate: Handle(r, "", h): needs a message type`},
		{"Handle nil", func() { validate.Handle[configMsg](validate.NewRouter(v), "join", nil) }, `validate: Handle(r, "join", nil): needs a handler`},
		{"Handle twice", func() {
			r := validate.NewRouter(v)
			validate.Handle(r, "join", typed)
			validate.Handle(r, "join", typed)
		}, `validate: Handle(r, "join", h): the type is already registered`},
		{"Query", func() { validate.Query[configMsg](v) }, ""},
		{"Query(nil)", func() { validate.Query[configMsg](nil) }, "validate: Query[validate_test.configMsg](nil): needs a Validator"},

		{"Signed", func() { validate.Signed(keys) }, ""},
		{"Signed(nil)", func() { validate.Signed(nil) }, "validate: Signed(nil, ...): needs a KeyFunc"},
		{"WithSkew(1ms)", func() { validate.Signed(keys, validate.WithSkew(time.Millisecond)) }, ""},
		{"WithSkew(0)", func() { validate.Signed(keys, validate.WithSkew(0)) }, "validate: WithSkew(0s): must be > 0"},
		{"WithSkew(-1s)", func() { validate.Signed(keys, validate.WithSkew(-time.Second)) }, "validate: WithSkew(-1s): must be > 0"},
		{"WithSignedClock(nil) is time.Now", func() { validate.Signed(keys, validate.WithSignedClock(nil)) }, ""},

		{"Dedup", func() { validate.Dedup(time.Second) }, ""},
		{"Dedup(0)", func() { validate.Dedup(0) }, "validate: Dedup(0s, ...): the window must be > 0"},
		{"WithDedupLimit(1)", func() { validate.Dedup(time.Second, validate.WithDedupLimit(1)) }, ""},
		{"WithDedupLimit(0)", func() { validate.Dedup(time.Second, validate.WithDedupLimit(0)) }, "validate: WithDedupLimit(0): must be >= 1"},
		{"WithDedupClock(nil) is time.Now", func() { validate.Dedup(time.Second, validate.WithDedupClock(nil)) }, ""},

		{"Audit(nil) is the server's logger", func() { validate.Audit(nil) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := panicText(tt.f); got != tt.want {
				t.Fatalf("panic %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSignReportsBadKeysAsErrors: Sign's inputs are data, so a bad one is
// an error, not a panic.
func TestSignReportsBadKeysAsErrors(t *testing.T) {
	t.Parallel()
	var err error
	if p := panicText(func() { _, err = validate.Sign([]byte("short"), "k", 1, time.Now(), []byte("{}")) }); p != "" {
		t.Fatalf("panicked: %s", p)
	}
	if err == nil {
		t.Fatal("Sign with a 5-byte key: no error")
	}
}
