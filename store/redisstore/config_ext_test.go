package redisstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wsguard/kit/store/redisstore"
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

// TestEveryOptionIsCheckedAtConstruction walks every option of the
// package with a value it refuses and the edge values it accepts. No
// command is sent: the client never connects.
func TestEveryOptionIsCheckedAtConstruction(t *testing.T) {
	t.Parallel()
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { rc.Close() })
	st := redisstore.New(rc)
	tests := []struct {
		name string
		f    func()
		want string // the panic; "" when accepted
	}{
		{"New", func() { redisstore.New(rc) }, ""},
		{"New(nil)", func() { redisstore.New(nil) }, "redisstore: New(nil, ...): needs a Redis client"},
		{"WithPrefix", func() { redisstore.New(rc, redisstore.WithPrefix("app:")) }, ""},
		{"WithPrefix(empty)", func() { redisstore.New(rc, redisstore.WithPrefix("")) }, `redisstore: WithPrefix(""): needs a prefix`},
		{"WithTimeout(1ms)", func() { redisstore.New(rc, redisstore.WithTimeout(time.Millisecond)) }, ""},
		{"WithTimeout(0)", func() { redisstore.New(rc, redisstore.WithTimeout(0)) }, "redisstore: WithTimeout(0s): must be > 0"},
		{"WithTimeout(-1s)", func() { redisstore.New(rc, redisstore.WithTimeout(-time.Second)) }, "redisstore: WithTimeout(-1s): must be > 0"},

		{"WithFailMode(FailOpen)", func() { st.Revoker(redisstore.WithFailMode(redisstore.FailOpen)) }, ""},
		{"WithFailMode(FailClosed)", func() { st.Conns(redisstore.WithFailMode(redisstore.FailClosed)) }, ""},
		{"WithFailMode(0)", func() { st.Handshakes(redisstore.WithFailMode(0)) }, "redisstore: WithFailMode(0): must be FailClosed or FailOpen"},
		{"WithFailMode(9)", func() { st.Handshakes(redisstore.WithFailMode(9)) }, "redisstore: WithFailMode(9): must be FailClosed or FailOpen"},

		{"WithLeaseTTL(3ms)", func() { st.Conns(redisstore.WithLeaseTTL(3 * time.Millisecond)) }, ""},
		{"WithLeaseTTL(0)", func() { st.Conns(redisstore.WithLeaseTTL(0)) }, "redisstore: WithLeaseTTL(0s): must be >= 3ms"},
		{"WithLeaseTTL(2ms)", func() { st.Conns(redisstore.WithLeaseTTL(2 * time.Millisecond)) }, "redisstore: WithLeaseTTL(2ms): must be >= 3ms"},
		{"WithLeaseTTL given to Revoker", func() { st.Revoker(redisstore.WithLeaseTTL(time.Minute)) }, "redisstore: Store.Revoker(WithLeaseTTL(1m0s)): leases are Store.Conns' only"},
		{"WithLeaseTTL given to Handshakes", func() { st.Handshakes(redisstore.WithLeaseTTL(time.Minute)) }, "redisstore: Store.Handshakes(WithLeaseTTL(1m0s)): leases are Store.Conns' only"},
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
