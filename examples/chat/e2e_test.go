package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wsguard/kit/internal/browser"
)

// The page's elements the test drives; page/index.html has them.
const (
	statusJS     = `document.getElementById("status").textContent`
	roomStatusJS = `document.getElementById("room-status").textContent`
)

// waitFor polls a JavaScript condition in the tab until it holds.
func waitFor(t *testing.T, tab context.Context, what, cond string) {
	t.Helper()
	if _, err := chromedp.Run(tab, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		state, _ := chromedp.Run(tab, chromedp.Evaluate[string](statusJS+` + " | " + document.getElementById("error").textContent`))
		t.Fatalf("waiting for %s (%s): %v; page status: %s", what, cond, err, state)
	}
}

func eval[T any](t *testing.T, tab context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(tab, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

func do(t *testing.T, tab context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(tab, steps...); err != nil {
		t.Fatal(err)
	}
}

// join fills the join form and submits it.
func join(t *testing.T, tab context.Context, room, email string) {
	t.Helper()
	do(t, tab,
		chromedp.SetValue(chromedp.ID("room"), room),
		chromedp.SetValue(chromedp.ID("email"), email),
		chromedp.Click(chromedp.ID("join")),
	)
}

// say types a message and sends it.
func say(t *testing.T, tab context.Context, text string) {
	t.Helper()
	do(t, tab,
		chromedp.SetValue(chromedp.ID("text"), text),
		chromedp.Click(chromedp.ID("say")),
	)
}

// shown is a condition: a message with this text is on the page.
func shown(text string) string {
	return fmt.Sprintf(`[...document.querySelectorAll("#messages li .text")].some(e => e.textContent === %q)`, text)
}

// TestBrowser drives the page in a real browser: a field error, joining,
// a broadcast seen in a second tab with its digest, an in-band token
// refresh, reconnection after a restart (1001), and a page of another
// origin that cannot connect.
func TestBrowser(t *testing.T) {
	t.Parallel()
	tabA := browser.New(t, 2*time.Minute)
	// A short token life, so that the page's refresh runs during the test.
	ts := startServer(t, config{tokenTTL: 8 * time.Second})
	issued := time.Now()

	do(t, tabA, chromedp.Navigate(ts.URL+"/"))
	waitFor(t, tabA, "tab A connected", statusJS+` === "connected"`)

	join(t, tabA, "lobby", "not-an-email")
	waitFor(t, tabA, "the field error", `document.getElementById("err-email").textContent !== ""`)
	if got := eval[string](t, tabA, `document.getElementById("err-email").textContent`); got != "not a valid e-mail address" {
		t.Errorf("e-mail error %q", got)
	}
	if got := eval[string](t, tabA, `document.getElementById("email").getAttribute("aria-invalid")`); got != "true" {
		t.Errorf("aria-invalid %q", got)
	}

	join(t, tabA, "lobby", "ada@example.com")
	waitFor(t, tabA, "tab A in the lobby", roomStatusJS+`.startsWith("in #lobby")`)
	if got := eval[string](t, tabA, `document.getElementById("err-email").textContent`); got != "" {
		t.Errorf("the field error stayed: %q", got)
	}

	tabB := browser.NewTab(t, tabA)
	do(t, tabB, chromedp.Navigate(ts.URL+"/"))
	waitFor(t, tabB, "tab B connected", statusJS+` === "connected"`)
	join(t, tabB, "lobby", "bob@example.com")
	waitFor(t, tabB, "tab B in the lobby", roomStatusJS+` === "in #lobby, 2 here"`)

	say(t, tabA, "hello from tab A")
	waitFor(t, tabB, "the broadcast in tab B", shown("hello from tab A"))
	waitFor(t, tabA, "the echo in tab A", shown("hello from tab A"))
	digest := eval[string](t, tabB, `document.querySelector("#messages li:last-child").dataset.digest`)
	if want := sha(`{"type":"say","text":"hello from tab A"}`); digest != want {
		t.Errorf("digest %s, want %s", digest, want)
	}
	from := eval[string](t, tabB, `document.querySelector("#messages li:last-child .from").textContent`)
	if from != "ada@example.com" {
		t.Errorf("from %q", from)
	}

	t.Run("markup is text", func(t *testing.T) {
		say(t, tabB, `<img src=x onerror="document.title='pwned'">`)
		waitFor(t, tabA, "the markup as text", shown(`<img src=x onerror="document.title='pwned'">`))
		if n := eval[int](t, tabA, `document.querySelectorAll("#messages img").length`); n != 0 {
			t.Errorf("%d img elements made from a message", n)
		}
	})

	t.Run("token refresh", func(t *testing.T) {
		waitFor(t, tabA, "a refresh", `Number(document.getElementById("token-info").dataset.refreshes) >= 1`)
		// Past the first token's expiry and the verifier's 5 s leeway the
		// connection must still be open, on the refreshed token.
		time.Sleep(time.Until(issued.Add(8*time.Second + 5*time.Second + time.Second)))
		say(t, tabA, "still here")
		waitFor(t, tabB, "a message after the first token expired", shown("still here"))
		if got := eval[string](t, tabA, statusJS); got != "connected" {
			t.Errorf("status %q", got)
		}
	})

	t.Run("reconnect after restart", func(t *testing.T) {
		connects := `Number(document.getElementById("status").dataset.connects)`
		before := map[context.Context]int{tabA: eval[int](t, tabA, connects), tabB: eval[int](t, tabB, connects)}
		wait := ts.restart(t)
		for _, tab := range []context.Context{tabA, tabB} {
			waitFor(t, tab, "the reconnection", fmt.Sprintf(`%s > %d && %s === "connected" && %s.startsWith("in #lobby")`,
				connects, before[tab], statusJS, roomStatusJS))
		}
		if err := wait(); err != nil {
			t.Fatal(err)
		}
		say(t, tabB, "after the restart")
		waitFor(t, tabA, "a message after the restart", shown("after the restart"))
		if !strings.Contains(ts.logs.String(), `"close":1001`) {
			t.Error("the log shows no 1001 close")
		}
	})

	t.Run("another origin", func(t *testing.T) {
		// A page on another port is another origin, even on the same host,
		// and it holds a valid token: the Origin check alone refuses it.
		tok := ts.token(t, "").Token
		evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<!doctype html><title>evil</title><script>
window.result = "pending";
const ws = new WebSocket(%q, [%q, %q]);
ws.onopen = () => { window.result = "open"; };
ws.onclose = (e) => { if (window.result === "pending") window.result = "closed " + e.code; };
</script>`, ts.wsURL(), subprotocol, "bearer."+tok)
		}))
		defer evil.Close()
		tabC := browser.NewTab(t, tabA)
		do(t, tabC, chromedp.Navigate(evil.URL+"/"))
		waitFor(t, tabC, "the socket to settle", `window.result !== "pending"`)
		if got := eval[string](t, tabC, `window.result`); got != "closed 1006" {
			t.Errorf("cross-origin socket: %s", got)
		}
		logs := ts.logs.String()
		var refused bool
		for l := range strings.SplitSeq(logs, "\n") {
			if strings.Contains(l, `"msg":"handshake rejected"`) && strings.Contains(l, `"status":403`) &&
				strings.Contains(l, `"origin":"`+evil.URL+`"`) {
				refused = true
			}
		}
		if !refused {
			t.Errorf("no 403 for origin %s in the log:\n%s", evil.URL, logs)
		}
	})
}
