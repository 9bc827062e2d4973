package validate_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/internal/wstest"
	"github.com/wsguard/kit/validate"
	"github.com/wsguard/kit/wsguard"
)

// fakeClock is a clock the test moves while a server reads it.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time            { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) add(d time.Duration)       { c.ns.Add(int64(d)) }
func newFakeClock() *fakeClock                 { c := new(fakeClock); c.ns.Store(signedNow.UnixNano()); return c }
func (c *fakeClock) opt() validate.DedupOption { return validate.WithDedupClock(c.now) }

// dedupServer numbers the messages its handler sees, so that a dropped
// one shows as a gap; "fail" is rejected with an error reply.
func dedupServer(t *testing.T, opts ...validate.DedupOption) string {
	t.Helper()
	var n atomic.Int64
	h := wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		if string(m.Data) == "fail" {
			return errlog.NewError(errlog.InvalidArgument, errors.New("fail"))
		}
		return c.SendText(ctx, strconv.FormatInt(n.Add(1), 10)+" "+string(m.Data))
	})
	return serve(t, wsguard.NewChain(validate.Dedup(time.Minute, opts...)).Then(h), new(wstest.Logs))
}

func TestDedup(t *testing.T) {
	t.Parallel()
	type step struct {
		advance time.Duration
		send    string
		want    string // "" when the message must be dropped
	}
	tests := []struct {
		name  string
		opts  []validate.DedupOption
		steps []step
	}{
		{"retry dropped", nil, []step{{0, "a", "1 a"}, {0, "a", ""}, {0, "b", "2 b"}}},
		{"retry after the window", nil, []step{{0, "a", "1 a"}, {time.Minute, "a", "2 a"}}},
		{"retries renew the sighting", nil, []step{
			{0, "a", "1 a"}, {50 * time.Second, "a", ""}, {50 * time.Second, "a", ""}, {time.Minute, "a", "2 a"},
		}},
		{"failed message not remembered", nil, []step{{0, "fail", "error"}, {0, "fail", "error"}}},
		{"least recently sighted forgotten first", []validate.DedupOption{validate.WithDedupLimit(2)}, []step{
			{0, "a", "1 a"}, {time.Second, "b", "2 b"}, {time.Second, "a", ""}, {time.Second, "c", "3 c"},
			{0, "a", ""}, {0, "b", "4 b"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			c := dial(t, dedupServer(t, append(tt.opts, clock.opt())...))
			for i, s := range tt.steps {
				clock.add(s.advance)
				send(t, c, s.send)
				if s.want == "" {
					continue
				}
				got := read(t, c)
				if s.want == "error" && strings.Contains(got, `"type":"error"`) {
					continue
				}
				if got != s.want {
					t.Fatalf("step %d (%q): got %q, want %q", i, s.send, got, s.want)
				}
			}
		})
	}
}

// TestDedupPerConnection checks that one client's messages do not hide
// another's.
func TestDedupPerConnection(t *testing.T) {
	t.Parallel()
	url := dedupServer(t)
	a, b := dial(t, url), dial(t, url)
	send(t, a, "same")
	read(t, a)
	send(t, b, "same")
	if got := read(t, b); !strings.HasSuffix(got, " same") {
		t.Errorf("second connection got %q", got)
	}
}

func TestDedupPanics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		f    func()
	}{
		{"zero window", func() { validate.Dedup(0) }},
		{"zero limit", func() { validate.Dedup(time.Second, validate.WithDedupLimit(0)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tt.f()
		})
	}
}
