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
	var zero T
	vs := c.values.Load()
	if vs == nil {
		return zero, false
	}
	x, ok := vs.get(k)
	if !ok {
		return zero, false
	}
	return x.(T), true
}

// Set makes c hold v under k, replacing what it held. On a connection
// that has ended, it does nothing: the value would outlive the
// connection it belongs to.
func (k *ConnValue[T]) Set(c *Conn, v T) {
	vs := c.values.Load()
	if vs == nil {
		c.values.CompareAndSwap(nil, new(connValues))
		vs = c.values.Load()
	}
	vs.set(k, v)
}

// Delete drops the value c holds under k, if any.
func (k *ConnValue[T]) Delete(c *Conn) {
	if vs := c.values.Load(); vs != nil {
		vs.delete(k)
	}
}

// connValues is a connection's value table, made by its first Set: a
// connection that holds no value pays one pointer for it.
type connValues struct {
	mu    sync.Mutex
	m     map[any]any
	ended bool
}

// endedValues stands for the table of a connection that has ended and
// held none.
var endedValues = &connValues{ended: true}

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

// clearValues drops every value c holds, for good: c has ended.
func (c *Conn) clearValues() {
	vs := c.values.Swap(endedValues)
	if vs == nil || vs == endedValues {
		return
	}
	vs.mu.Lock()
	defer vs.mu.Unlock()
	vs.m, vs.ended = nil, true
}
