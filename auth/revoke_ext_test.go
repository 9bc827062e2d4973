package auth_test

import (
	"context"
	"testing"
	"time"

	"github.com/wsguard/kit/auth"
)

func TestMemoryRevoker(t *testing.T) {
	t.Parallel()
	m := auth.NewMemoryRevoker()
	m.RevokeToken("live", time.Now().Add(time.Hour))
	m.RevokeToken("past", time.Now().Add(-time.Second))
	m.RevokeSubject("mallory")
	tests := []struct {
		name string
		p    auth.Principal
		want bool
	}{
		{"revoked token", auth.Principal{Subject: "alice", TokenID: "live"}, true},
		{"revocation past its end", auth.Principal{Subject: "alice", TokenID: "past"}, false},
		{"other token", auth.Principal{Subject: "alice", TokenID: "other"}, false},
		{"no token id", auth.Principal{Subject: "alice"}, false},
		{"revoked subject", auth.Principal{Subject: "mallory", TokenID: "any"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := m.Revoked(context.Background(), &tt.p)
			if err != nil || got != tt.want {
				t.Fatalf("Revoked = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestMemoryRevokerRestoreSubject(t *testing.T) {
	t.Parallel()
	m := auth.NewMemoryRevoker()
	m.RevokeSubject("mallory")
	m.RestoreSubject("mallory")
	if got, _ := m.Revoked(context.Background(), &auth.Principal{Subject: "mallory"}); got {
		t.Fatal("restored subject still revoked")
	}
}
