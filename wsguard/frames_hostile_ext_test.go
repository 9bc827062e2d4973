package wsguard_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/wsguard/kit/internal/wstest"
	"github.com/wsguard/kit/wsguard"
)

// A frame header costs the client 14 bytes: the message buffer grows with
// the bytes that arrive, not with the length the header announces, or a
// few headers under a large read limit take the server's memory. Not
// parallel: the bytes allocated are counted for the whole process.
func TestAnnouncedLengthIsNotAllocated(t *testing.T) {
	const announced = 256 << 20
	ts := start(t, &messageLog{}, wsguard.WithReadLimit(1<<30))
	raw := dialRawOK(t, ts)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := raw.WriteFrameHeader(true, wstest.OpText, announced, []byte("only these bytes")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the server reads the header and what follows
	runtime.ReadMemStats(&after)
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 32<<20 {
		t.Fatalf("%d bytes allocated for a header announcing %d and 16 bytes of payload", grown, announced)
	}
	if err := raw.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if line := closeLine(t, ts.Logs); line["code"] != "canceled" || line["close"] != float64(1006) {
		t.Fatalf("closing line %v, want the message cut short (canceled, 1006)", line)
	}
}
