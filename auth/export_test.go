package auth

// CachedPrincipal returns the principal the verified-token cache of v
// remembers for t, or nil: a Verify of t that leaves it in place was
// answered from the cache, one that replaces it verified t in full. It
// does not change the entries' recency.
func CachedPrincipal(v *Verifier, t Token) *Principal {
	if v.cache == nil {
		return nil
	}
	v.cache.mu.Lock()
	defer v.cache.mu.Unlock()
	if e := v.cache.entries[tokenDigest(t)]; e != nil {
		return e.p
	}
	return nil
}

// Tracked returns how many connections of sub s holds for CloseSubject.
func Tracked(s *Sessions, sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for ss := s.bySub[sub]; ss != nil; ss = ss.next {
		n++
	}
	return n
}
