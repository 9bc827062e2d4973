package prom_test

import (
	"os"
	"strings"
	"testing"

	"github.com/wsguard/kit/wsguard"
)

// TestDocumentedLimits checks that the README's metrics table and the
// package documentation name every value of the limit label.
func TestDocumentedLimits(t *testing.T) {
	t.Parallel()
	limits := []string{wsguard.LimitMessageRate, wsguard.LimitHandshakeRate, wsguard.LimitConnCap, wsguard.LimitSubjectConns}
	for _, tc := range []struct {
		file, row string
	}{
		{"../../README.md", "| `wsguard_limited_total` |"},
		{"doc.go", "//\tlimited_total{limit}"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			b, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			var row string
			for l := range strings.Lines(string(b)) {
				if strings.HasPrefix(l, tc.row) {
					row = l
				}
			}
			if row == "" {
				t.Fatalf("no line starting %q", tc.row)
			}
			for _, lim := range limits {
				if !strings.Contains(row, lim) {
					t.Errorf("%q lacks %s", strings.TrimSpace(row), lim)
				}
			}
		})
	}
}
