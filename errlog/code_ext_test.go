package errlog_test

import (
	"log/slog"
	"net/http"
	"strconv"
	"testing"

	"github.com/wsguard/kit/errlog"
)

// TestUnknownCode checks that a code outside the table reads as what it
// is, while it goes on the wire as the most conservative code, Internal.
func TestUnknownCode(t *testing.T) {
	t.Parallel()
	known := map[string]bool{}
	for _, c := range errlog.Codes() {
		known[c.String()] = true
	}
	after := errlog.Codes()[len(errlog.Codes())-1] + 1
	for _, tc := range []struct {
		code errlog.Code
		name string
	}{
		{0, "code(0)"},
		{after, "code(" + strconv.Itoa(int(after)) + ")"},
		{255, "code(255)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := tc.code
			if got := c.String(); got != tc.name || known[got] {
				t.Errorf("String() = %q, want %q and no name of the table", got, tc.name)
			}
			if got := c.LogValue().String(); got != tc.name {
				t.Errorf("LogValue() = %q, want %q", got, tc.name)
			}
			if c.CloseStatus() != errlog.CloseInternalError || c.HTTPStatus() != http.StatusInternalServerError ||
				c.Level() != slog.LevelError || c.Text() != errlog.Internal.Text() {
				t.Errorf("wire (%d, %d, %v, %q), want Internal's", c.CloseStatus(), c.HTTPStatus(), c.Level(), c.Text())
			}
			if got := errlog.NewError(c, nil).Error(); got != tc.name {
				t.Errorf("NewError(%d, nil).Error() = %q", c, got)
			}
		})
	}
}
