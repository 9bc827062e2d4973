package auth

import (
	"strings"
	"testing"
)

// ordinary are messages an application sends: none is a refresh message.
var ordinary = []struct{ name, msg string }{
	{"short JSON", `{"type":"chat","room":"lobby","text":"hello"}`},
	{"Python ensure_ascii", `{"type": "chat", "text": "caf\u00e9 \u00fcber \u4e16\u754c"}`},
	{"not JSON", "hello, world"},
	{"1 KiB JSON", `{"type":"chat","text":"` + strings.Repeat("lorem ipsum ", 84) + `"}`},
}

// TestIsRefreshOrdinaryMessages checks that telling an ordinary message
// from a refresh message allocates nothing. AllocsPerRun cannot run in
// parallel.
func TestIsRefreshOrdinaryMessages(t *testing.T) {
	for _, tt := range ordinary {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte(tt.msg)
			if isRefresh(data) {
				t.Fatal("taken for a refresh message")
			}
			if n := testing.AllocsPerRun(100, func() { isRefresh(data) }); n != 0 {
				t.Fatalf("%v allocations per message, want 0", n)
			}
		})
	}
}

// BenchmarkIsRefresh measures what the session middleware adds to each
// message that is not a refresh, and what a refresh message costs to
// recognise.
func BenchmarkIsRefresh(b *testing.B) {
	cases := append(ordinary[:len(ordinary):len(ordinary)],
		struct{ name, msg string }{"refresh", `{"type": "refresh", "token": "eyJhbGciOiJIUzI1NiJ9.e30.c2ln"}`})
	for _, bc := range cases {
		b.Run(strings.ReplaceAll(bc.name, " ", "-"), func(b *testing.B) {
			data := []byte(bc.msg)
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				isRefresh(data)
			}
		})
	}
}
