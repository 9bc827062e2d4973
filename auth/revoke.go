package auth

import (
	"context"
	"sync"
	"time"
)

// Revoker tells whether a token, or every token of a subject, has been
// revoked. [Sessions] asks it at the handshake, on each refresh and
// periodically while a connection lasts ([WithRevoker]). An error fails
// closed: the handshake is refused with 503 and a connection closed with
// 1013, as a revocation that cannot be checked cannot be ruled out.
type Revoker interface {
	// Revoked reports whether p's token (by p.TokenID) or p.Subject is
	// revoked.
	Revoked(ctx context.Context, p *Principal) (bool, error)
}

// MemoryRevoker is an in-memory [Revoker] for a single server. Its zero
// value is not usable; create it with [NewMemoryRevoker].
type MemoryRevoker struct {
	mu        sync.Mutex
	tokens    map[string]time.Time // token id -> when to forget it
	subjects  map[string]struct{}
	pruneSize int // prune expired token entries when the map reaches this
}

// minPrune is the token count below which MemoryRevoker does not look
// for entries to forget.
const minPrune = 64

// NewMemoryRevoker returns an empty MemoryRevoker.
func NewMemoryRevoker() *MemoryRevoker {
	return &MemoryRevoker{
		tokens:    make(map[string]time.Time),
		subjects:  make(map[string]struct{}),
		pruneSize: minPrune,
	}
}

// RevokeToken revokes the token with the given id (jti) until the given
// time, after which it is forgotten. Pass the token's expiry plus the
// verifier's leeway: from then on the token is refused as expired anyway,
// so memory stays bounded by the tokens alive.
func (m *MemoryRevoker) RevokeToken(id string, until time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.tokens) >= m.pruneSize {
		now := time.Now()
		for k, t := range m.tokens {
			if !now.Before(t) {
				delete(m.tokens, k)
			}
		}
		// Doubling keeps the cost of pruning constant per call on average.
		m.pruneSize = max(2*len(m.tokens), minPrune)
	}
	m.tokens[id] = until
}

// RevokeSubject revokes every token of sub until [MemoryRevoker.RestoreSubject].
// It does not close open connections: [Sessions.CloseSubject] does.
func (m *MemoryRevoker) RevokeSubject(sub string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.subjects[sub] = struct{}{}
}

// RestoreSubject undoes [MemoryRevoker.RevokeSubject].
func (m *MemoryRevoker) RestoreSubject(sub string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.subjects, sub)
}

// Revoked implements [Revoker]. It never fails.
func (m *MemoryRevoker) Revoked(_ context.Context, p *Principal) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.subjects[p.Subject]; ok {
		return true, nil
	}
	if p.TokenID == "" {
		return false, nil
	}
	until, ok := m.tokens[p.TokenID]
	return ok && time.Now().Before(until), nil
}
