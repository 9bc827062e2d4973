package validate_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/internal/browser"
	"github.com/wsguard/kit/internal/wstest"
	"github.com/wsguard/kit/validate"
	"github.com/wsguard/kit/wsguard"
)

// sealedPage seals two messages with examples/client/sealed.js (one with
// seal and ws.send, one with send), opens the replies, then replays its
// first message; it keeps everything that
// crossed the wire in window.wire for the test to read.
const sealedPage = `<!doctype html>
<meta charset="utf-8">
<title>sealed</title>
<script type="module">
import { sealClient } from "/sealed.js";
const w = window.wire = { sent: [], received: [], replies: [], errors: [], close: 0 };
try {
  const key = await (await fetch("/key" + location.search)).json();
  const client = await sealClient(key);
  const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/ws");
  ws.onclose = (ev) => { w.close = ev.code; };
  ws.onmessage = async (ev) => {
    w.received.push(ev.data);
    try {
      w.replies.push(await client.open(ev.data));
    } catch (e) {
      w.errors.push(String(e));
    }
    if (w.replies.length === 2) ws.send(w.sent[0]);
  };
  await new Promise((resolve) => { ws.onopen = resolve; });
  const msg = await client.seal('{"type":"say","text":"the launch code is 0000"}');
  w.sent.push(msg);
  ws.send(msg);
  w.sent.push(await client.send(ws, "ünïcode ✓"));
} catch (e) {
  w.errors.push(String(e));
}
</script>`

// TestSealedBrowser runs a sealed round trip from Chromium with each kind
// of key, and checks that the server's log, like anything in front of
// Sealed, saw the ciphertext only.
func TestSealedBrowser(t *testing.T) {
	t.Parallel()
	js, err := os.ReadFile("../examples/client/sealed.js")
	if err != nil {
		t.Fatal(err)
	}
	logs := new(wstest.Logs)
	sealed := validate.NewSealed(sealKeys)
	var seen recorder // what a proxy or a message log in front of Sealed sees
	h := wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		return sealed.Send(ctx, c, []byte("echo: "+string(m.Data)))
	})
	srv := wsguard.New(wsguard.NewChain(validate.Audit(nil), seen.middleware, sealed.Middleware).Then(h),
		wsguard.WithLogger(errlog.NewLogger(logs, slog.LevelDebug)))
	mux := http.NewServeMux()
	mux.Handle("/ws", srv)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(sealedPage))
	})
	mux.HandleFunc("/sealed.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		_, _ = w.Write(js)
	})
	mux.HandleFunc("/key", func(w http.ResponseWriter, r *http.Request) {
		// A test page may get the shared key; a real one never serves it.
		key := sealShared
		if r.URL.Query().Get("kind") == "ec" {
			key = publicOf(t, sealEC)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(key)
	})
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.Close()
	})

	tab := browser.New(t, 2*time.Minute)
	for _, kind := range []string{"ec", "dir"} {
		t.Run(kind, func(t *testing.T) {
			if _, err := chromedp.Run(tab, chromedp.Navigate(hs.URL+"/?kind="+kind)); err != nil {
				t.Fatal(err)
			}
			if _, err := chromedp.Run(tab, chromedp.Poll[bool](`window.wire && (window.wire.close !== 0 || window.wire.errors.length > 0)`,
				chromedp.WithPollingTimeout(30*time.Second))); err != nil {
				t.Fatalf("waiting for the page: %v", err)
			}
			var wire struct {
				Sent, Received, Replies, Errors []string
				Close                           int
			}
			raw, err := chromedp.Run(tab, chromedp.Evaluate[string](`JSON.stringify(window.wire)`))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(raw), &wire); err != nil {
				t.Fatal(err)
			}
			if len(wire.Errors) > 0 {
				t.Fatalf("page errors: %v", wire.Errors)
			}
			want := []string{`echo: {"type":"say","text":"the launch code is 0000"}`, "echo: ünïcode ✓"}
			if strings.Join(wire.Replies, "\n") != strings.Join(want, "\n") {
				t.Errorf("replies %q, want %q", wire.Replies, want)
			}
			if wire.Close != errlog.ClosePolicyViolation {
				t.Errorf("the replayed first message closed %d, want 1008", wire.Close)
			}
			for _, m := range append(wire.Sent, wire.Received...) {
				if strings.Count(m, ".") != 4 || strings.Contains(m, "launch") || strings.Contains(m, "echo") {
					t.Errorf("not a compact JWE: %.120q", m)
				}
			}
			for _, m := range wire.Sent {
				if !seen.has(m) {
					t.Errorf("the server did not receive %.60q as sent", m)
				}
				if len(auditLinesOf(t, logs, digest(m))) == 0 {
					t.Errorf("no audit line with the digest of the ciphertext %.60q", m)
				}
			}
		})
	}
	logs.WaitFor(t, "connection closed", 5*time.Second)
	for _, secret := range []string{"launch code", "ünïcode", "echo:"} {
		if strings.Contains(logs.String(), secret) || seen.contains(secret) {
			t.Errorf("%q reached the log or the wire in clear", secret)
		}
	}
}

// auditLinesOf returns the audit lines ("message") for a digest.
func auditLinesOf(t *testing.T, logs *wstest.Logs, sum string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range logs.Find(t, "message") {
		for _, v := range l {
			if v == sum {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

// recorder keeps every message that passes it.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) middleware(next wsguard.Handler) wsguard.Handler {
	return wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		r.mu.Lock()
		r.msgs = append(r.msgs, string(m.Data))
		r.mu.Unlock()
		return next.ServeMessage(ctx, c, m)
	})
}

func (r *recorder) has(msg string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.msgs, msg)
}

func (r *recorder) contains(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.ContainsFunc(r.msgs, func(m string) bool { return strings.Contains(m, s) })
}
