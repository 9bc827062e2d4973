package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/lestrrat-go/jwx/v3/jwa"

	"github.com/wsguard/kit/auth"
	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/internal/browser"
	"github.com/wsguard/kit/internal/localca"
	"github.com/wsguard/kit/internal/wstest"
	"github.com/wsguard/kit/wsguard"
)

// TestServeOptions: the TLS flags go together.
func TestServeOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		cert, key string
		err       error
		n         int
	}{
		{"neither", "", "", nil, 1},
		{"both", "cert.pem", "key.pem", nil, 2},
		{"cert only", "cert.pem", "", errTLSFlags, 0},
		{"key only", "", "key.pem", errTLSFlags, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts, err := serveOptions(tc.cert, tc.key)
			if err != tc.err || len(opts) != tc.n {
				t.Fatalf("serveOptions = %d options, %v; want %d, %v", len(opts), err, tc.n, tc.err)
			}
		})
	}
}

// TestBrowserTLS: served with -tls-cert and -tls-key, the page loads over
// https:// in Chromium, which trusts the test's certificate by its public
// key only, and a socket from the page reaches /ws over wss://: it joins
// a room and gets its own message back.
func TestBrowserTLS(t *testing.T) {
	t.Parallel()
	files, err := localca.WriteDir(t.TempDir(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	opts, err := serveOptions(files.CertFile, files.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("chat-test-key-over-tls-32-bytes!")
	logs := &wstest.Logs{}
	a, err := newApp(config{key: key, logger: errlog.NewLogger(logs, slog.LevelDebug)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- wsguard.Serve(ctx, ln, a, append(opts, wsguard.WithDrain(a.ws))...) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	tab := browser.New(t, 2*time.Minute, browser.TrustSPKI(files.Leaf.SPKIHash()))
	origin := "https://" + ln.Addr().String()
	if err := chromedp.Do(tab, chromedp.Navigate(origin+"/")); err != nil {
		t.Fatal(err)
	}
	if got := tlsEval[string](t, tab, `location.origin`); got != origin {
		t.Fatalf("page at %s, want %s", got, origin)
	}

	tok, err := auth.Sign(jwa.HS256(), key, auth.Claims{Subject: "ada", Expiry: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	tlsEval[bool](t, tab, fmt.Sprintf(`(() => {
window.tlsResult = "pending";
const ws = new WebSocket("wss://" + location.host + "/ws", [%q, %q]);
ws.onopen = () => ws.send(JSON.stringify({type: "join", room: "tls"}));
ws.onmessage = (e) => {
  const m = JSON.parse(e.data);
  if (m.type === "joined") ws.send(JSON.stringify({type: "say", text: "over wss"}));
  if (m.type === "message") { window.tlsResult = ws.url + " " + ws.protocol + " " + m.text; ws.close(1000); }
};
ws.onclose = (e) => { if (window.tlsResult === "pending") window.tlsResult = "closed " + e.code; };
return true;
})()`, subprotocol, "bearer."+string(tok)))
	if _, err := chromedp.Run(tab, chromedp.Poll[bool](`window.tlsResult !== "pending"`, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatalf("waiting for the socket: %v\n%s", err, logs.String())
	}
	want := "wss://" + ln.Addr().String() + "/ws " + subprotocol + " over wss"
	if got := tlsEval[string](t, tab, `window.tlsResult`); got != want {
		t.Fatalf("socket: %q, want %q\n%s", got, want, logs.String())
	}
}

// tlsEval evaluates expr in the tab.
func tlsEval[T any](t *testing.T, tab context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(tab, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}
