package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"

	"github.com/wsguard/kit/internal/browser"
)

// burst sends n messages from tab through its form, as fast as a person
// pasting would, each numbered and long enough that a socket that is
// not read fills in a few bursts. The form keeps at most one text in
// its box, so the page gets them one submit at a time.
func burst(t *testing.T, tab context.Context, tag string, n int) {
	t.Helper()
	eval[bool](t, tab, fmt.Sprintf(`(() => {
  const box = document.getElementById("text");
  const form = document.getElementById("say-form");
  for (let i = 0; i < %d; i++) {
    box.value = %q + " " + i + " " + %q;
    form.requestSubmit();
  }
  return true;
})()`, n, tag, strings.Repeat("x", 470)))
}

// heardAll is a condition: the n messages of a burst tagged tag are on
// the page, in the order they were sent.
func heardAll(tag string, n int) string {
	return fmt.Sprintf(`(() => {
  const seen = [...document.querySelectorAll("#messages li .text")]
    .map(e => e.textContent.split(" "))
    .filter(w => w[0] === %q)
    .map(w => Number(w[1]));
  return seen.length === %d && seen.every((v, i) => v === i);
})()`, tag, n)
}

// TestBrowserSilentMember has a member that never reads join the room
// where two tabs chat: bursts from each tab keep reaching the other, in
// order, within a bound far below the 10 s a broadcast waiting on that
// member would take; the member is cut with 4429 once its queue is over
// the bound, the room is told it left, and neither tab is ever
// disconnected.
func TestBrowserSilentMember(t *testing.T) {
	t.Parallel()
	tabA := browser.New(t, time.Minute)
	// The small queue and send buffers of TestSilentMemberDelaysNoOne:
	// the member is cut after a few hundred kilobytes rather than after
	// the megabytes of the default queue and of loopback sockets.
	ts := startServerOn(t, config{sendQueue: 64 << 10}, func(ln net.Listener) net.Listener { return smallSendBuffers{ln} })

	signIn(t, tabA, ts.URL, "Ada")
	join(t, tabA, "lobby")
	waitFor(t, tabA, "tab A in the lobby", roomStatusJS+` === "in #lobby, 1 here"`)
	tabB := browser.NewTab(t, tabA)
	signIn(t, tabB, ts.URL, "Bob")
	join(t, tabB, "lobby")
	for _, tab := range []context.Context{tabA, tabB} {
		waitFor(t, tab, "two in the lobby", roomStatusJS+` === "in #lobby, 2 here"`)
	}

	// deliver sends a burst from one tab and waits until the other shows
	// all of it; it returns how long that took, from before the first
	// send.
	const perBurst = 40
	const bound = 5 * time.Second
	deliver := func(from, to context.Context, tag string) time.Duration {
		t.Helper()
		start := time.Now()
		burst(t, from, tag, perBurst)
		if _, err := chromedp.Run(to, chromedp.Poll[bool](heardAll(tag, perBurst),
			chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(bound))); err != nil {
			state, _ := chromedp.Run(to, chromedp.Evaluate[string](statusJS+` + " | " + `+errorJS))
			t.Fatalf("burst %s: not all of %d messages shown within %v: %v; page status: %s", tag, perBurst, bound, err, state)
		}
		return time.Since(start).Round(time.Millisecond)
	}
	base := deliver(tabA, tabB, "before")

	silent := ts.dialSilent(t, "Silent")
	send(t, silent, `{"type":"join","room":"lobby"}`)
	for _, tab := range []context.Context{tabA, tabB} {
		waitFor(t, tab, "the silent member in the lobby", roomStatusJS+` === "in #lobby, 3 here"`)
	}

	// Burst until the silent member is cut: the sockets hold a few
	// kilobytes, its queue 64 KiB, a burst some 25 KiB. The tabs take
	// turns, each well within its message rate.
	var took []time.Duration
	for i := 0; ts.members("lobby") == 3; i++ {
		if i == 12 {
			t.Fatalf("the silent member was not cut after %d bursts", i)
		}
		from, to := tabA, tabB
		if i%2 == 1 {
			from, to = tabB, tabA
		}
		took = append(took, deliver(from, to, fmt.Sprintf("during%d", i)))
	}
	// Cut, it reads at last and finds its close frame behind what its
	// socket held.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	silentClose := make(chan error, 1)
	go func() {
		for {
			if _, _, err := silent.Read(ctx); err != nil {
				silentClose <- err
				return
			}
		}
	}()
	took = append(took, deliver(tabB, tabA, "after"))
	t.Logf("a burst of %d took %v before the silent member joined, %v while it was there and after it was cut",
		perBurst, base, took)

	// The close frame waits behind what the silent member's socket holds,
	// for as long as the close handshake lasts: on a busy machine the
	// server may cut the socket first. Either way the server's closing
	// line, checked below, says 4429; the Go test reads the frame itself.
	if err := <-silentClose; websocket.CloseStatus(err) != 4429 && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		t.Errorf("the silent member: %v, want close 4429 or the socket cut", err)
	}
	for _, tab := range []context.Context{tabA, tabB} {
		waitFor(t, tab, "the silent member's leaving", roomStatusJS+` === "in #lobby, 2 here"`)
		waitFor(t, tab, "the leave notice",
			`[...document.querySelectorAll("#messages li.notice")].some(e => e.textContent === "Silent left.")`)
		if got := eval[string](t, tab, statusJS); got != "connected" {
			t.Errorf("status %q", got)
		}
		if n := eval[int](t, tab, connectsJS); n != 1 {
			t.Errorf("the tab connected %d times, want once", n)
		}
	}
	lines := ts.logs.WaitFor(t, "connection closed", 5*time.Second)
	if len(lines) != 1 || lines[0]["close"] != float64(4429) || lines[0]["code"] != "resource_exhausted" {
		t.Errorf("closing lines %v, want the silent member's only, with 4429", lines)
	}
}
