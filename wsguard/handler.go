package wsguard

import "context"

// Handler handles one message. ctx carries the values of the upgrade request
// (an authenticated principal, for example) and is canceled when the
// connection ends.
//
// A nil error keeps the connection open. An error classified
// errlog.InvalidArgument is answered with an error reply and the connection
// stays open until too many arrive in a row; any other error closes the
// connection with its code's close status. A panic closes it with 1011.
type Handler interface {
	ServeMessage(ctx context.Context, c *Conn, m *Message) error
}

// HandlerFunc adapts a function to [Handler].
type HandlerFunc func(ctx context.Context, c *Conn, m *Message) error

// ServeMessage calls f.
func (f HandlerFunc) ServeMessage(ctx context.Context, c *Conn, m *Message) error {
	return f(ctx, c, m)
}

// Middleware wraps a message handler.
type Middleware func(Handler) Handler

// Chain is an immutable list of message middleware; the first runs
// outermost.
type Chain struct {
	mws []Middleware
}

// NewChain returns a chain of the given middleware.
func NewChain(mws ...Middleware) Chain {
	return Chain{mws: append([]Middleware(nil), mws...)}
}

// Append returns a new chain with mws after c's; c is unchanged.
func (c Chain) Append(mws ...Middleware) Chain {
	all := make([]Middleware, 0, len(c.mws)+len(mws))
	all = append(all, c.mws...)
	return Chain{mws: append(all, mws...)}
}

// Then returns h wrapped by the chain.
func (c Chain) Then(h Handler) Handler {
	for i := len(c.mws) - 1; i >= 0; i-- {
		h = c.mws[i](h)
	}
	return h
}

// ThenFunc is Then for a function.
func (c Chain) ThenFunc(f HandlerFunc) Handler { return c.Then(f) }
