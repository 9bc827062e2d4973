package wsguard_test

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/wsguard"
)

// TestServerStallIsNotChargedAsBurst blocks the handler for two seconds
// while the client keeps sending: a client that kept under the rate is
// not closed when the messages that waited in the socket are read in a
// burst, and one that sent far more than the rate allowed in that time
// still is.
func TestServerStallIsNotChargedAsBurst(t *testing.T) {
	t.Parallel()
	const stall = 2 * time.Second
	tests := []struct {
		name   string
		during int // messages sent while the handler is blocked
		cut    bool
	}{
		{"under the rate during the stall", 40, false}, // 20/s against 25/s
		{"far over the rate during the stall", 150, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := start(t, wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
				switch string(m.Data) {
				case "block":
					time.Sleep(stall)
				case "done?":
					return c.SendText(ctx, "done")
				}
				return nil
			}), wsguard.WithMessageRate(25, 5))
			c := dial(t, ts.URL, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			write := func(s string) {
				if err := c.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
					t.Fatal(err)
				}
			}
			write("block")
			every := stall * 9 / 10 / time.Duration(tt.during)
			for range tt.during {
				write("chat")
				time.Sleep(every)
			}
			write("done?")
			_, b, err := c.Read(ctx)
			if tt.cut {
				if got := websocket.CloseStatus(err); got != errlog.CloseResourceExhausted {
					t.Fatalf("read %q, %v; want close 4429", b, err)
				}
				return
			}
			if err != nil || string(b) != "done" {
				t.Fatalf("read %q, %v; want the reply after the stall", b, err)
			}
		})
	}
}
