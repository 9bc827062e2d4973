package validate

import (
	"context"
	"sync"

	"github.com/wsguard/kit/wsguard"
)

// perConn keeps a middleware's state for each open connection. A message
// handler is shared by every connection, and wsguard.Conn has no slot for
// it. The entry is dropped when the connection's context ends, so memory
// is bounded by the server's connection cap; context.AfterFunc costs no
// goroutine until then.
//
// The server handles one connection's messages one at a time, so S itself
// needs no lock.
type perConn[S any] struct {
	m sync.Map // *wsguard.Conn -> *S
}

func (p *perConn[S]) get(c *wsguard.Conn) *S {
	if s, ok := p.m.Load(c); ok {
		return s.(*S)
	}
	s, loaded := p.m.LoadOrStore(c, new(S))
	if !loaded {
		context.AfterFunc(c.Context(), func() { p.m.Delete(c) })
	}
	return s.(*S)
}
