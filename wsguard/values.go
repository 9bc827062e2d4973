package wsguard

import "sync"

// ConnValue is a key for one application value held by each connection
// for its lifetime: a room joined, a subscription, a session's state,
// without a map keyed by *Conn that the application must clean up. The
// values are dropped when the connection ends, after the disconnect hooks
// ([WithDisconnect]) have run, so a hook can still read them.
//
// Create each key once, at start-up, with [NewConnValue]; two keys never
// see each other's values, whatever their T. A connection that never
// holds a value costs nothing more: its table is made by the first Set.
type ConnValue[T any] struct {
	_ byte // a key's identity is its address: no two keys may share one
}

// NewConnValue returns a new key for values of type T.
func NewConnValue[T any]() *ConnValue[T] { return new(ConnValue[T]) }

// Get returns the value c holds under k, and whether it holds one. It is
// safe to call from any goroutine.
func (k *ConnValue[T]) Get(c *Conn) (T, bool) {
	v, ok := c.values.get(k)
	t, _ := v.(T)
	return t, ok
}

// Set makes c hold v under k, replacing what it held. On a connection
// that has ended, it does nothing: the value would outlive the
// connection it belongs to.
func (k *ConnValue[T]) Set(c *Conn, v T) { c.values.set(k, v) }

// Delete drops the value c holds under k, if any.
func (k *ConnValue[T]) Delete(c *Conn) { c.values.delete(k) }

// connValues is a connection's value table.
type connValues struct {
	mu    sync.Mutex
	m     map[any]any // nil until the first Set
	ended bool
}

func (v *connValues) get(k any) (any, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	x, ok := v.m[k]
	return x, ok
}

func (v *connValues) set(k, x any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ended {
		return
	}
	if v.m == nil {
		v.m = make(map[any]any, 1)
	}
	v.m[k] = x
}

func (v *connValues) delete(k any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.m, k)
}

// clear drops every value, for good: the connection has ended.
func (v *connValues) clear() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.m, v.ended = nil, true
}
