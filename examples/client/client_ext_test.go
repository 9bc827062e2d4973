package client_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"go.uber.org/goleak"

	"github.com/wsguard/kit/auth"
	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/examples/client"
	"github.com/wsguard/kit/internal/browser"
	"github.com/wsguard/kit/internal/wstest"
	"github.com/wsguard/kit/validate"
	"github.com/wsguard/kit/wsguard"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	protocol = "test.v1"
	// signKey is the pre-shared key of the key id "device-1".
	signKey = "a-pre-shared-key-of-some-length"
)

var tokenKey = []byte("a-token-key-of-32-bytes-or-more!")

// Messages of the test protocol.
type (
	echoMsg struct {
		Text string `json:"text" validate:"required,max=100"`
	}
	// closeMsg asks the server to end the connection as errlog code Code
	// would, to see what the client does after each close code.
	closeMsg struct {
		Code string `json:"code" validate:"required"`
	}
)

var codes = map[string]errlog.Code{
	"invalid_payload":    errlog.InvalidPayload,
	"unsupported":        errlog.Unsupported,
	"too_large":          errlog.TooLarge,
	"unauthenticated":    errlog.Unauthenticated,
	"permission_denied":  errlog.PermissionDenied,
	"resource_exhausted": errlog.ResourceExhausted,
	"unavailable":        errlog.Unavailable,
	"policy_violation":   errlog.PolicyViolation,
}

// server is a wsguard endpoint for the module: /ws with JWTs at the
// handshake and in-band refresh, /signed with validate.Signed envelopes
// and no token, /token minting tokens for the subject "tester".
type server struct {
	*httptest.Server
	logs     *wstest.Logs
	sessions *auth.Sessions
	ttl      time.Duration
	minted   atomic.Int64
}

func newServer(t *testing.T, ttl time.Duration) *server {
	t.Helper()
	s := &server{logs: new(wstest.Logs), ttl: ttl}
	log := errlog.NewLogger(s.logs, slog.LevelDebug)
	router := validate.NewRouter(validate.New())
	validate.Handle(router, "echo", func(ctx context.Context, c *wsguard.Conn, m echoMsg) error {
		return c.SendJSON(ctx, map[string]string{"type": "echo", "text": m.Text, "subject": c.Subject()})
	})
	validate.Handle(router, "close", func(ctx context.Context, c *wsguard.Conn, m closeMsg) error {
		code, ok := codes[m.Code]
		if !ok {
			return errlog.NewError(errlog.InvalidArgument, errors.New("no such code"))
		}
		return errlog.NewError(code, errors.New("asked to close"))
	})
	v, err := auth.NewVerifier(jwa.HS256(), tokenKey)
	if err != nil {
		t.Fatal(err)
	}
	s.sessions = auth.NewSessions(v)
	withTokens := wsguard.New(router, append(s.sessions.Options(),
		wsguard.WithSubprotocols(protocol), wsguard.WithLogger(log))...)
	keys := func(_ context.Context, id string) ([]byte, error) {
		if id == "device-1" {
			return []byte(signKey), nil
		}
		return nil, nil
	}
	signed := wsguard.New(router, wsguard.WithMiddleware(validate.Signed(keys)),
		wsguard.WithSubprotocols(protocol), wsguard.WithLogger(log))

	mux := http.NewServeMux()
	mux.Handle("GET /wsguard.js", client.Handler())
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, harness)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		exp := time.Now().Add(s.ttl)
		if r.URL.Query().Get("expired") != "" {
			exp = time.Now().Add(-time.Minute)
		}
		// Tokens minted within a second differ only by their id.
		tok, err := auth.Sign(jwa.HS256(), tokenKey, auth.Claims{
			Subject: "tester", IssuedAt: time.Now(), Expiry: exp, ID: fmt.Sprint(s.minted.Add(1)),
		})
		if err != nil {
			http.Error(w, "internal", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, string(tok))
	})
	mux.Handle("GET /ws", withTokens)
	mux.Handle("GET /signed", signed)
	s.Server = httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = withTokens.Shutdown(ctx)
		_ = signed.Shutdown(ctx)
		s.Close()
	})
	return s
}

// harness is the test page: make(name, path, opts) starts a Client whose
// events, and the reasons it asks for tokens, go to logs[name].
const harness = `<!doctype html><title>wsguard.js</title><script type="module">
import * as wsg from "/wsguard.js";
window.wsg = wsg;
window.logs = {};
window.clients = {};
window.make = (name, path, opts) => {
  const log = (window.logs[name] = []);
  const o = { protocol: "test.v1", backoff: { base: 200, max: 800 }, ...opts };
  if (opts.tokens) {
    // "fresh": a new token each time; "expired": an expired one; "bad": one the server refuses.
    o.getToken = async ({ reason }) => {
      log.push({ ev: "getToken", reason });
      if (opts.tokens === "bad") return "e30.eyJzdWIiOiJ4IiwiZXhwIjo0MTAyNDQ0ODAwfQ.c2ln";
      const r = await fetch("/token" + (opts.tokens === "expired" ? "?expired=1" : ""), { method: "POST" });
      return r.text();
    };
  }
  delete o.tokens;
  const c = new wsg.Client(path, o);
  for (const ev of ["state", "open", "close", "refreshed", "unreachable", "stopped", "message"]) {
    c.addEventListener(ev, (e) => log.push({ ev, ...e.detail }));
  }
  c.on("echo", (m) => log.push({ ev: "echo", text: m.text, subject: m.subject }));
  c.on("error", (m) => log.push({ ev: "error", code: m.code, fields: m.fields }));
  window.clients[name] = c;
  c.start();
};
window.count = (name, ev) => window.logs[name].filter((e) => e.ev === ev).length;
window.ready = true;
</script>`

type closeEvent struct {
	Code  int
	Retry string
	Delay int
	Text  string
}

type tab struct {
	t   *testing.T
	ctx context.Context
}

// run runs JavaScript statements in the tab.
func (b tab) run(js string) {
	b.t.Helper()
	get[bool](b, "(() => { "+js+"; return true; })()")
}

// get evaluates a JavaScript expression in the tab.
func get[T any](b tab, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

func (b tab) waitFor(what, cond string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		log, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`JSON.stringify(window.logs).slice(-3000)`))
		b.t.Fatalf("waiting for %s (%s): %v\nevents: %s", what, cond, err, log)
	}
}

// TestModule drives wsguard.js in a real browser against a wsguard
// server: typed messages and error replies, signed envelopes, the
// reconnect policy for each close code, a handshake refused again and
// again, a token known to be dead before dialling, a new token after
// 4401, and a refresh in band.
func TestModule(t *testing.T) {
	t.Parallel()
	ctx := browser.New(t, time.Minute)
	s := newServer(t, 3*time.Second)
	b := tab{t, ctx}
	if err := chromedp.Do(ctx, chromedp.Navigate(s.URL+"/")); err != nil {
		t.Fatal(err)
	}
	b.waitFor("the module", `window.ready === true`)

	t.Run("typed messages and field errors", func(t *testing.T) {
		b := tab{t, ctx}
		b.run(`make("typed", "/ws", { tokens: "fresh" })`)
		b.waitFor("open", `count("typed", "open") === 1`)
		// The refresh message is the module's: a page cannot send one that
		// the server would take as a malformed refresh (4401).
		if !get[bool](b, `(() => { try { clients.typed.send("refresh", { token: "x" }); return false; } catch { return true; } })()`) {
			t.Error(`send("refresh") was let through`)
		}
		// start() on an open client replaces the connection, never adds one.
		b.run(`clients.typed.start()`)
		b.waitFor("the second open", `count("typed", "open") === 2`)
		if n := get[int](b, `logs.typed.filter((e) => e.ev === "close").length`); n != 0 {
			t.Errorf("%d close events for a connection the page replaced", n)
		}
		b.run(`clients.typed.send("echo", { text: "hi" }) && clients.typed.send("echo", { text: "" }) && clients.typed.send("whatever", {})`)
		b.waitFor("the echo, the error reply and the close", `count("typed", "stopped") === 1`)
		got := get[[]map[string]any](b, `logs.typed.filter((e) => ["echo", "error", "stopped"].includes(e.ev))`)
		want := `[map[ev:echo subject:tester text:hi] map[code:invalid_argument ev:error fields:[map[field:text rule:required]]] map[code:1003 ev:stopped reason:refused text:The server refused a message it does not accept.]]`
		if fmt.Sprint(got) != want {
			t.Errorf("events\n%v\nwant\n%s", got, want)
		}
	})

	t.Run("signed envelopes", func(t *testing.T) {
		b := tab{t, ctx}
		b.run(`make("signed", "/signed", { sign: { keyId: "device-1", key: "` + signKey + `" } })`)
		b.waitFor("open", `count("signed", "open") === 1`)
		b.run(`for (const text of ["one", "two", "three"]) clients.signed.send("echo", { text })`)
		b.waitFor("three echoes", `count("signed", "echo") === 3`)
		got := get[[]string](b, `logs.signed.filter((e) => e.ev === "echo").map((e) => e.text + " from " + e.subject)`)
		if strings.Join(got, ", ") != "one from device-1, two from device-1, three from device-1" {
			t.Errorf("echoes %q", got)
		}

		// A wrong key is refused with 4401, and there is no token to get.
		b.run(`make("forged", "/signed", { sign: { keyId: "device-1", key: "not-the-pre-shared-key" } })`)
		b.waitFor("open", `count("forged", "open") === 1`)
		b.run(`clients.forged.send("echo", { text: "forged" })`)
		b.waitFor("stopped", `count("forged", "stopped") === 1`)
		code := get[int](b, `logs.forged.find((e) => e.ev === "stopped").code`)
		if code != 4401 {
			t.Errorf("forged: stopped with %d", code)
		}
		if !strings.Contains(s.logs.String(), "signature does not verify") {
			t.Error("the server did not see the forged signature")
		}
	})

	t.Run("close codes", func(t *testing.T) {
		tests := []struct {
			code   string
			status int
			retry  bool
		}{
			{"policy_violation", 1008, false},
			{"unsupported", 1003, false},
			{"invalid_payload", 1007, false},
			{"too_large", 1009, false},
			{"permission_denied", 4403, false},
			{"resource_exhausted", 4429, true},
			{"unavailable", 1013, true},
		}
		b := tab{t, ctx}
		for _, tt := range tests {
			b.run(fmt.Sprintf(`make(%q, "/ws", { tokens: "fresh" })`, tt.code))
		}
		for _, tt := range tests {
			b.waitFor(tt.code+" open", fmt.Sprintf(`count(%q, "open") === 1`, tt.code))
			b.run(fmt.Sprintf(`clients[%[1]q].send("close", { code: %[1]q })`, tt.code))
		}
		for _, tt := range tests {
			t.Run(tt.code, func(t *testing.T) {
				b := tab{t, ctx}
				b.waitFor("the close", fmt.Sprintf(`count(%q, "close") === 1`, tt.code))
				c := get[closeEvent](b, fmt.Sprintf(`logs[%q].find((e) => e.ev === "close")`, tt.code))
				if c.Code != tt.status || c.Text == "" || strings.Contains(c.Text, fmt.Sprint(tt.status)) {
					t.Errorf("close %+v, want %d in plain words", c, tt.status)
				}
				if !tt.retry {
					if c.Retry != "never" {
						t.Errorf("retry %q", c.Retry)
					}
					b.waitFor("stopped", fmt.Sprintf(`count(%q, "stopped") === 1`, tt.code))
					return
				}
				// Backoff with jitter: between half and all of the base.
				if c.Retry != "backoff" || c.Delay < 100 || c.Delay > 200 {
					t.Errorf("retry %q after %d ms, want backoff within 100-200 ms", c.Retry, c.Delay)
				}
				b.waitFor("the reconnection", fmt.Sprintf(`count(%q, "open") === 2`, tt.code))
			})
		}
		// Those that stopped did not dial again.
		time.Sleep(time.Second)
		for _, tt := range tests {
			opens := get[int](b, fmt.Sprintf(`count(%q, "open")`, tt.code))
			if want := map[bool]int{false: 1, true: 2}[tt.retry]; opens != want {
				t.Errorf("%s: opened %d times, want %d", tt.code, opens, want)
			}
			b.run(fmt.Sprintf(`clients[%q].stop()`, tt.code))
		}
	})

	t.Run("refused handshakes", func(t *testing.T) {
		// The browser sees only 1006 for the server's 401: the client
		// retries, with a new token each time, and tells the page after
		// three attempts that it cannot get through.
		b := tab{t, ctx}
		b.run(`make("refused", "/ws", { tokens: "bad", maxFailedDials: 3 })`)
		b.waitFor("unreachable", `count("refused", "unreachable") === 1`)
		b.waitFor("a fourth try", `count("refused", "getToken") >= 4`)
		got := get[struct {
			Opens, Stopped int
			Reasons        []string
		}](b, `({opens: count("refused", "open"), stopped: count("refused", "stopped"),
			reasons: logs.refused.filter((e) => e.ev === "getToken").map((e) => e.reason).slice(0, 3)})`)
		if got.Opens != 0 || got.Stopped != 0 || strings.Join(got.Reasons, " ") != "start refused refused" {
			t.Errorf("%+v", got)
		}
		b.run(`clients.refused.stop()`)
		if n := strings.Count(s.logs.String(), `"status":401`); n < 3 {
			t.Errorf("%d handshakes refused with 401, want 3 or more", n)
		}
	})

	t.Run("expired before dialling", func(t *testing.T) {
		b := tab{t, ctx}
		before := strings.Count(s.logs.String(), `"status":401`)
		b.run(`make("expired", "/ws", { tokens: "expired" })`)
		b.waitFor("stopped", `count("expired", "stopped") === 1`)
		reason := get[string](b, `logs.expired.find((e) => e.ev === "stopped").reason`)
		if reason != "expired" {
			t.Errorf("stopped for %q", reason)
		}
		time.Sleep(500 * time.Millisecond)
		if after := strings.Count(s.logs.String(), `"status":401`); after != before {
			t.Error("the expired token was sent")
		}
	})

	t.Run("4401 and refresh", func(t *testing.T) {
		b := tab{t, ctx}
		b.run(`make("session", "/ws", { tokens: "fresh" })`)
		b.waitFor("open", `count("session", "open") === 1`)
		// The 3 s token is refreshed in band before it expires.
		b.waitFor("refreshed", `count("session", "refreshed") === 1`)
		if n := s.sessions.CloseSubject("tester"); n != 1 {
			t.Fatalf("closed %d connections", n)
		}
		b.waitFor("the reconnection", `count("session", "open") === 2`)
		reasons := get[[]string](b, `logs.session.filter((e) => e.ev === "getToken").map((e) => e.reason)`)
		if strings.Join(reasons, " ") != "start refresh expired" {
			t.Errorf("token reasons %q, want start refresh expired", reasons)
		}
		b.run(`clients.session.stop()`)
	})
}
