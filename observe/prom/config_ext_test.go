package prom_test

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsguard/kit/observe/prom"
)

// TestEveryArgumentIsCheckedAtConstruction: New and Listen return an
// error for every invalid input, and never panic.
func TestEveryArgumentIsCheckedAtConstruction(t *testing.T) {
	t.Parallel()
	used := prometheus.NewRegistry()
	if _, err := prom.New(used); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    func() error
		want string // the error; "" when accepted
	}{
		{"New", func() error { _, err := prom.New(prometheus.NewRegistry()); return err }, ""},
		{"New(nil)", func() error { _, err := prom.New(nil); return err }, "prom: New(nil): needs a prometheus.Registerer"},
		{"New twice on one registry", func() error { _, err := prom.New(used); return err },
			`duplicate metrics collector registration attempted`},
		{"Listen(nil gatherer)", func() error { _, _, err := prom.Listen("127.0.0.1:0", nil, nil); return err },
			"prom: Listen(addr, nil, ...): needs a prometheus.Gatherer"},
		{"Listen(bad address)", func() error { _, _, err := prom.Listen("no-port", used, nil); return err },
			"listen tcp: address no-port: missing port in address"},
		{"Listen(nil logger) is slog.Default", func() error {
			_, stop, err := prom.Listen("127.0.0.1:0", used, nil)
			if err == nil {
				stop()
			}
			return err
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var err error
			func() {
				defer func() {
					if p := recover(); p != nil {
						err = fmt.Errorf("panicked: %v", p)
					}
				}()
				err = tt.f()
			}()
			if got := fmt.Sprint(err); tt.want == "" && err != nil || tt.want != "" && got != tt.want {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}
