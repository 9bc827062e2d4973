package wsguard_test

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/wsguard"
)

// quiet keeps the examples' rejection lines out of their output: the
// guards after it log to its logger.
var quiet = wsguard.Instrument(slog.New(slog.DiscardHandler), nil)

func ExampleOriginCheck() {
	check, err := wsguard.NewOriginCheck([]string{"app.example.com", "*.example.org"})
	if err != nil {
		panic(err)
	}
	socket := quiet(check.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Upgrade with any WebSocket library here.
		w.WriteHeader(http.StatusSwitchingProtocols)
	})))

	for _, origin := range []string{
		"", // not a browser
		"https://ws.example.com",
		"https://app.example.com",
		"https://chat.example.org",
		"https://evil.example",
		"null",
	} {
		r := httptest.NewRequest(http.MethodGet, "http://ws.example.com/socket", nil)
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		w := httptest.NewRecorder()
		socket.ServeHTTP(w, r)
		fmt.Printf("%-26q %d\n", origin, w.Code)
	}

	_, err = wsguard.NewOriginCheck([]string{"*"})
	fmt.Println(err != nil)
	// Output:
	// ""                         101
	// "https://ws.example.com"   101
	// "https://app.example.com"  101
	// "https://chat.example.org" 101
	// "https://evil.example"     403
	// "null"                     403
	// true
}

func ExampleRealIP() {
	p, err := wsguard.NewRealIP([]string{"10.0.0.0/8"})
	if err != nil {
		panic(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/socket", nil)
	r.Header.Set("X-Forwarded-For", "203.0.113.50, 198.51.100.7, 10.0.0.2")

	r.RemoteAddr = "10.0.0.7:4711" // our load balancer
	ip, _ := p.IP(r)
	fmt.Println(ip) // the first address our proxies did not write themselves

	r.RemoteAddr = "192.0.2.1:4711" // someone else: the header is theirs
	ip, _ = p.IP(r)
	fmt.Println(ip)
	// Output:
	// 198.51.100.7
	// 192.0.2.1
}

func ExampleHandshakeLimit() {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	limit := wsguard.NewHandshakeLimit(0.5, 2, wsguard.WithGuardClock(func() time.Time { return now }))
	socket := quiet(limit.Handler(http.NotFoundHandler()))

	for range 3 {
		r := httptest.NewRequest(http.MethodGet, "/socket", nil)
		w := httptest.NewRecorder()
		socket.ServeHTTP(w, r)
		fmt.Printf("%d Retry-After: %q\n", w.Code, w.Header().Get("Retry-After"))
	}
	// Output:
	// 404 Retry-After: ""
	// 404 Retry-After: ""
	// 429 Retry-After: "2"
}

func ExampleConnLimit_Acquire() {
	limit := wsguard.NewConnLimit(10, 1)
	r := httptest.NewRequest(http.MethodGet, "/socket", nil)

	release, err := limit.Acquire(r)
	fmt.Println(limit.Open(), err)
	_, err = limit.Acquire(r)
	fmt.Println(limit.Open(), errlog.CodeOf(err), wsguard.RetryAfter(err))
	release() // when the connection ends
	release() // a second call does nothing
	fmt.Println(limit.Open())
	// Output:
	// 1 <nil>
	// 1 resource_exhausted 1s
	// 0
}

func ExampleReject() {
	// A guard of your own answers like the built-in ones.
	auth := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") == "" {
				wsguard.Reject(w, r, slog.New(slog.DiscardHandler),
					errlog.NewError(errlog.Unauthenticated, errors.New("no Authorization header")))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	w := httptest.NewRecorder()
	auth(http.NotFoundHandler()).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/socket", nil))
	fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"), w.Body.String())
	// Output:
	// 401 Bearer error="invalid_token" invalid token
}

// Example_guards puts the guards in front of a WebSocket handler written
// with any library, in the order of the design: who is asking, may they, how
// often, how many at once, from which page. Instrument, outermost, gives
// them the logger (and observer) a Server would.
func Example_guards() {
	realIP, err := wsguard.NewRealIP([]string{"10.0.0.0/8"})
	if err != nil {
		panic(err)
	}
	filter, err := wsguard.NewIPFilter(nil, []string{"203.0.113.0/24"})
	if err != nil {
		panic(err)
	}
	origins, err := wsguard.NewOriginCheck([]string{"app.example.com"})
	if err != nil {
		panic(err)
	}
	var socket http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("upgrade for", wsguard.ClientIP(r))
	})
	socket = wsguard.Instrument(slog.New(slog.DiscardHandler), nil)(
		realIP.Handler(
			filter.Handler(
				wsguard.NewHandshakeLimit(wsguard.DefaultHandshakeRate, wsguard.DefaultHandshakeBurst).Handler(
					wsguard.NewConnLimit(wsguard.DefaultMaxConns, wsguard.DefaultMaxConnsPerIP).Handler(
						origins.Handler(socket))))))

	for _, client := range []string{"198.51.100.7", "203.0.113.9"} {
		r := httptest.NewRequest(http.MethodGet, "http://ws.example.com/socket", nil)
		r.RemoteAddr = "10.0.0.7:4711"
		r.Header.Set("X-Forwarded-For", client)
		r.Header.Set("Origin", "https://app.example.com")
		w := httptest.NewRecorder()
		socket.ServeHTTP(w, r)
		fmt.Println(client, w.Code)
	}
	// Output:
	// upgrade for 198.51.100.7
	// 198.51.100.7 200
	// 203.0.113.9 403
}
