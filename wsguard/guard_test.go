package wsguard

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/wsguard/kit/errlog"
)

func TestRetryError(t *testing.T) {
	t.Parallel()
	err := retryError(errlog.ResourceExhausted, 1500*time.Millisecond, io.ErrUnexpectedEOF)
	wrapped := errors.Join(context.Canceled, err)
	tests := []struct {
		name string
		err  error
		want time.Duration
	}{
		{"direct", err, 1500 * time.Millisecond},
		{"wrapped", wrapped, 1500 * time.Millisecond},
		{"none", errlog.NewError(errlog.ResourceExhausted, nil), 0},
		{"nil", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := RetryAfter(tt.err); got != tt.want {
				t.Errorf("RetryAfter = %v, want %v", got, tt.want)
			}
		})
	}
	if c := errlog.CodeOf(err); c != errlog.ResourceExhausted {
		t.Errorf("CodeOf = %v, want resource_exhausted", c)
	}
	if got := errlog.TextOf(err); got != errlog.ResourceExhausted.Text() {
		t.Errorf("TextOf = %q", got)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Error("the cause is not in the chain")
	}
	if got, want := err.Error(), "resource_exhausted: unexpected EOF"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		d    time.Duration
		want int64
	}{
		{"nanosecond rounds up to one", time.Nanosecond, 1},
		{"sub-second", 100 * time.Millisecond, 1},
		{"one second", time.Second, 1},
		{"just over", time.Second + time.Nanosecond, 2},
		{"one and a half", 1500 * time.Millisecond, 2},
		{"a day", 24 * time.Hour, 86400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := retryAfterSeconds(tt.d); got != tt.want {
				t.Errorf("retryAfterSeconds(%v) = %d, want %d", tt.d, got, tt.want)
			}
		})
	}
}
