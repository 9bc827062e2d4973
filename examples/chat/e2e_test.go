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
	"github.com/chromedp/chromedp/kb"
	"github.com/lestrrat-go/jwx/v3/jwa"

	"github.com/wsguard/kit/auth"
	"github.com/wsguard/kit/internal/browser"
)

// The page's elements the test reads; page/index.html has them.
const (
	statusJS     = `document.getElementById("status").textContent`
	roomStatusJS = `document.getElementById("room-status").textContent`
	errorJS      = `document.getElementById("error").textContent`
	connectsJS   = `Number(document.getElementById("status").dataset.connects || 0)`
	whoamiJS     = `document.getElementById("whoami").textContent`
	subJS        = `document.getElementById("whoami").title`
	textBoxJS    = `document.getElementById("text").value`
)

// waitFor polls a JavaScript condition in the tab until it holds.
func waitFor(t *testing.T, tab context.Context, what, cond string) {
	t.Helper()
	if _, err := chromedp.Run(tab, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		state, _ := chromedp.Run(tab, chromedp.Evaluate[string](statusJS+` + " | " + `+errorJS))
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

// signIn opens the page in tab and signs in under name.
func signIn(t *testing.T, tab context.Context, url, name string) {
	t.Helper()
	do(t, tab, chromedp.Navigate(url+"/"))
	waitFor(t, tab, "the sign-in form", `!document.getElementById("name-form").hidden`)
	do(t, tab,
		chromedp.SetValue(chromedp.ID("name"), name),
		chromedp.Click(chromedp.ID("signin")),
	)
	waitFor(t, tab, name+" connected", statusJS+` === "connected"`)
}

// join fills the join form and submits it.
func join(t *testing.T, tab context.Context, room string) {
	t.Helper()
	do(t, tab,
		chromedp.SetValue(chromedp.ID("room"), room),
		chromedp.Click(chromedp.ID("join")),
	)
}

// say types a message and presses Enter, as a person does.
func say(t *testing.T, tab context.Context, text string) {
	t.Helper()
	// SetValue refuses an empty value; the box can be emptied by hand.
	eval[string](t, tab, fmt.Sprintf(`document.getElementById("text").value = %q`, text))
	do(t, tab, chromedp.SendKeys(chromedp.ID("text"), kb.Enter))
}

// shown is a condition: a message with this text is on the page.
func shown(text string) string {
	return fmt.Sprintf(`[...document.querySelectorAll("#messages li .text")].some(e => e.textContent === %q)`, text)
}

// last evaluates expr on the last message with this text.
func last(text, expr string) string {
	return fmt.Sprintf(`[...document.querySelectorAll("#messages li")].filter(li => li.querySelector(".text")?.textContent === %q).at(-1)%s`, text, expr)
}

// TestBrowser drives the page in a real browser as two people would: a
// field error, a name that comes from the token, join notices and a live
// count, one's own messages told apart, empty sends that never reach the
// server, refused text kept in the box, long words wrapped, an in-band
// token refresh, reconnection after 4401 and after a restart (1001), and
// a page of another origin that cannot connect.
func TestBrowser(t *testing.T) {
	t.Parallel()
	tabA := browser.New(t, 2*time.Minute)
	// A short token life, so that the page's refresh runs during the test.
	const ttl = 4 * time.Second
	ts := startServer(t, config{tokenTTL: ttl})
	issued := time.Now()

	signIn(t, tabA, ts.URL, "Ada")
	if got := eval[string](t, tabA, whoamiJS); got != "Ada" {
		t.Errorf("signed in as %q", got)
	}
	join(t, tabA, "the lobby")
	waitFor(t, tabA, "the field error", `document.getElementById("err-room").textContent !== ""`)
	if got := eval[string](t, tabA, `document.getElementById("err-room").textContent`); got != "letters and digits only" {
		t.Errorf("room error %q", got)
	}
	if got := eval[string](t, tabA, `document.getElementById("room").getAttribute("aria-invalid")`); got != "true" {
		t.Errorf("aria-invalid %q", got)
	}
	join(t, tabA, "lobby")
	waitFor(t, tabA, "tab A in the lobby", roomStatusJS+` === "in #lobby, 1 here"`)
	if got := eval[string](t, tabA, `document.getElementById("err-room").textContent`); got != "" {
		t.Errorf("the field error stayed: %q", got)
	}

	tabB := browser.NewTab(t, tabA)
	signIn(t, tabB, ts.URL, "Bob")
	join(t, tabB, "lobby")
	waitFor(t, tabB, "tab B in the lobby", roomStatusJS+` === "in #lobby, 2 here"`)
	waitFor(t, tabA, "the count in tab A", roomStatusJS+` === "in #lobby, 2 here"`)
	waitFor(t, tabA, "the join notice in tab A",
		`[...document.querySelectorAll("#messages li.notice")].some(e => e.textContent === "Bob joined.")`)

	t.Run("identity from the token", func(t *testing.T) {
		say(t, tabA, "hello from tab A")
		waitFor(t, tabB, "the broadcast in tab B", shown("hello from tab A"))
		waitFor(t, tabA, "the echo in tab A", shown("hello from tab A"))
		if got := eval[string](t, tabB, last("hello from tab A", `.querySelector(".from").textContent`)); got != "Ada" {
			t.Errorf("tab B shows it from %q", got)
		}
		if got := eval[string](t, tabB, last("hello from tab A", `.className`)); got != "theirs" {
			t.Errorf("tab B's class %q", got)
		}
		if got := eval[string](t, tabA, last("hello from tab A", `.className`)); got != "mine" {
			t.Errorf("tab A's own message has class %q", got)
		}
		if got := eval[string](t, tabA, textBoxJS); got != "" {
			t.Errorf("the sent text stayed in the box: %q", got)
		}
		digest := eval[string](t, tabB, last("hello from tab A", `.dataset.digest`))
		if want := sha(`{"type":"say","text":"hello from tab A"}`); digest != want {
			t.Errorf("digest %s, want %s", digest, want)
		}
	})

	t.Run("empty sends", func(t *testing.T) {
		// Five invalid messages in a row would close the connection with
		// 1008: the page must not send these at all.
		before := strings.Count(ts.logs.String(), "invalid_argument")
		for _, text := range []string{"", "", "   ", "", "\t", "", ""} {
			say(t, tabA, text)
		}
		say(t, tabA, "after the empty ones")
		waitFor(t, tabB, "a message after empty sends", shown("after the empty ones"))
		if got := eval[string](t, tabA, statusJS); got != "connected" {
			t.Errorf("status %q", got)
		}
		if after := strings.Count(ts.logs.String(), "invalid_argument"); after != before {
			t.Errorf("%d invalid messages reached the server", after-before)
		}
	})

	t.Run("refused text is kept", func(t *testing.T) {
		long := strings.Repeat("y", 501)
		say(t, tabB, long)
		waitFor(t, tabB, "the field error", `document.getElementById("err-text").textContent !== ""`)
		if got := eval[string](t, tabB, `document.getElementById("err-text").textContent`); got != "at most 500 characters" {
			t.Errorf("text error %q", got)
		}
		if got := eval[string](t, tabB, textBoxJS); got != long {
			t.Errorf("the box holds %d characters, want the 501 typed", len(got))
		}
	})

	t.Run("long words wrap", func(t *testing.T) {
		word := strings.Repeat("w", 400)
		say(t, tabB, word)
		waitFor(t, tabA, "the long word", shown(word))
		if wide := eval[bool](t, tabA, `(() => { const m = document.getElementById("messages"); return m.scrollWidth > m.clientWidth; })()`); wide {
			t.Error("a long word makes the message list scroll sideways")
		}
	})

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
		time.Sleep(time.Until(issued.Add(ttl + 5*time.Second + time.Second)))
		say(t, tabA, "still here")
		waitFor(t, tabB, "a message after the first token expired", shown("still here"))
		if got := eval[string](t, tabA, statusJS); got != "connected" {
			t.Errorf("status %q", got)
		}
	})

	t.Run("reconnect after 4401", func(t *testing.T) {
		before := eval[int](t, tabA, connectsJS)
		sub := eval[string](t, tabA, subJS)
		if n := ts.app.Load().sessions.CloseSubject(sub); n != 1 {
			t.Fatalf("closed %d connections of %s", n, sub)
		}
		waitFor(t, tabA, "the reconnection", fmt.Sprintf(`%s > %d && %s === "connected" && %s.startsWith("in #lobby")`,
			connectsJS, before, statusJS, roomStatusJS))
		if got := eval[string](t, tabA, subJS); got != sub {
			t.Errorf("the subject changed from %s to %s", sub, got)
		}
		say(t, tabA, "after 4401")
		waitFor(t, tabB, "a message after 4401", shown("after 4401"))
		if !strings.Contains(ts.logs.String(), `"close":4401`) {
			t.Error("the log shows no 4401 close")
		}
	})

	t.Run("reconnect after restart", func(t *testing.T) {
		before := map[context.Context]int{tabA: eval[int](t, tabA, connectsJS), tabB: eval[int](t, tabB, connectsJS)}
		wait := ts.restart(t)
		for _, tab := range []context.Context{tabA, tabB} {
			waitFor(t, tab, "the reconnection", fmt.Sprintf(`%s > %d && %s === "connected" && %s.startsWith("in #lobby")`,
				connectsJS, before[tab], statusJS, roomStatusJS))
		}
		if err := wait(); err != nil {
			t.Fatal(err)
		}
		// The restarted demo server has a new key, so the page signed in
		// again: a new subject, the same name.
		if got := eval[string](t, tabA, whoamiJS); got != "Ada" {
			t.Errorf("after the restart tab A is %q", got)
		}
		say(t, tabB, "after the restart")
		waitFor(t, tabA, "a message after the restart", shown("after the restart"))
		if got := eval[string](t, tabA, last("after the restart", `.querySelector(".from").textContent`)); got != "Bob" {
			t.Errorf("from %q", got)
		}
		if !strings.Contains(ts.logs.String(), `"close":1001`) {
			t.Error("the log shows no 1001 close")
		}
	})

	t.Run("another origin", func(t *testing.T) {
		// A page on another port is another origin, even on the same host,
		// and it holds a valid token: the Origin check alone refuses it.
		tok := ts.token(t, "", "").Token
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

	t.Run("links", func(t *testing.T) {
		// A server with its own key hands out no tokens: people come with
		// a link, /#token=<jwt>, and the page cannot get another.
		key := []byte("a-configured-key-of-32-bytes-or-more")
		keyed := startServer(t, config{key: key})
		link := func(name string, exp time.Time) string {
			tok, err := auth.Sign(jwa.HS256(), key, auth.Claims{
				Subject: "user-" + name[:min(len(name), 8)], Expiry: exp, Extra: map[string]any{nameClaim: name},
			})
			if err != nil {
				t.Fatal(err)
			}
			return keyed.URL + "/#token=" + string(tok)
		}
		t.Run("expired", func(t *testing.T) {
			tab := browser.NewTab(t, tabA)
			do(t, tab, chromedp.Navigate(link("Eve", time.Now().Add(-time.Minute))))
			waitFor(t, tab, "the expiry notice", statusJS+` === "link expired"`)
			if got := eval[string](t, tab, errorJS); got != "This link has expired. Ask for a new one." {
				t.Errorf("error %q", got)
			}
			if got := eval[bool](t, tab, `document.getElementById("reconnect").hidden`); !got {
				t.Error("the page offers to retry a dead token")
			}
			// The token was never sent: the server saw no handshake.
			if logs := keyed.logs.String(); strings.Contains(logs, "handshake") || strings.Contains(logs, `"conn"`) {
				t.Errorf("the expired token reached the server:\n%s", logs)
			}
		})

		t.Run("a name the server does not show", func(t *testing.T) {
			// 40 characters is no display name: the room sees the subject,
			// and so does the page once the server has said so.
			tab := browser.NewTab(t, tabA)
			do(t, tab, chromedp.Navigate(link(strings.Repeat("z", 40), time.Now().Add(time.Hour))))
			waitFor(t, tab, "connected", statusJS+` === "connected"`)
			join(t, tab, "lobby")
			waitFor(t, tab, "in the lobby", roomStatusJS+` === "in #lobby, 1 here"`)
			if got := eval[string](t, tab, whoamiJS); got != "user-zzzzzzzz" {
				t.Errorf("signed in as %q", got)
			}
		})

		t.Run("refused after 4401", func(t *testing.T) {
			tab := browser.NewTab(t, tabA)
			do(t, tab, chromedp.Navigate(link("Dora", time.Now().Add(time.Hour))))
			waitFor(t, tab, "connected", statusJS+` === "connected"`)
			if got := eval[string](t, tab, whoamiJS); got != "Dora" {
				t.Errorf("signed in as %q", got)
			}
			if n := keyed.app.Load().sessions.CloseSubject("user-Dora"); n != 1 {
				t.Fatalf("closed %d connections", n)
			}
			waitFor(t, tab, "the notice", statusJS+` === "link expired"`)
			if got := eval[string](t, tab, errorJS); got != "This link is no longer accepted. Ask for a new one." {
				t.Errorf("error %q", got)
			}
			if got := eval[string](t, tab, `document.getElementById("status").title`); got != "close code 4401" {
				t.Errorf("status title %q", got)
			}
			time.Sleep(time.Second)
			if n := eval[int](t, tab, connectsJS); n != 1 {
				t.Errorf("the page connected %d times with a refused token", n)
			}
		})
	})
}
