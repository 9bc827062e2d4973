package validate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/wsguard"
)

// TypedFunc handles one decoded and validated message of type T.
type TypedFunc[T any] func(ctx context.Context, c *wsguard.Conn, msg T) error

// JSON returns a handler that decodes each message strictly into a T (a
// struct), validates it with v and passes it to h. A message that does not
// decode or validate never reaches h: it is answered with an error reply
// and counted by the server's strike counter. The message may carry an
// "id" member T does not declare: its correlation id ([ID]). JSON panics
// when T is not a struct type and on a nil v or h.
func JSON[T any](v *Validator, h TypedFunc[T]) wsguard.Handler {
	root := structType[T]("JSON")
	if v == nil || h == nil {
		misconfigured(fmt.Sprintf("JSON[%v](%s, %s)", root, nilOr(v == nil, "v"), nilOr(h == nil, "h")), "needs a Validator and a handler")
	}
	decode := newDecoder[T](v, root, true, declares[T]("id"))
	return wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		if err := v.precheck(m.Data); err != nil {
			return err
		}
		msg, err := decode(m.Data)
		if err != nil {
			return err
		}
		ctx, _ = withMessage(ctx, m)
		return h(ctx, c, msg)
	})
}

func structType[T any](caller string) reflect.Type {
	t := reflect.TypeFor[T]()
	if t.Kind() != reflect.Struct {
		panic(fmt.Sprintf("validate: %s[%v]: the message type must be a struct", caller, t))
	}
	return t
}

// Router dispatches JSON messages by their "type" member:
//
//	{"type":"join","room":"lobby","email":"ada@example.com"}
//
// goes to the handler registered with [Handle] for "join", decoded into
// that handler's own struct and checked against its own rules. A message
// whose type nobody registered is errlog.Unsupported (close 1003), or an
// error reply with [WithUnknownTypeReply]; one without a string "type" is
// errlog.InvalidArgument.
//
// Register every type before serving: a Router is not safe for concurrent
// registration, only for concurrent use.
type Router struct {
	v            *Validator
	routes       map[string]route
	replyUnknown bool
}

type route struct {
	typ   string // the registered name, safe to log unlike the client's bytes
	serve wsguard.HandlerFunc
}

// RouterOption configures a [Router].
type RouterOption func(*Router)

// WithUnknownTypeReply makes a message of a type nobody registered an
// error reply ([CodeUnknownType]) that keeps the connection open, counted
// as an invalid message, instead of a close with 1003: for a protocol
// whose clients may be newer than the server.
func WithUnknownTypeReply() RouterOption {
	return func(r *Router) { r.replyUnknown = true }
}

// NewRouter returns an empty router validating with v. It panics on a nil
// v.
func NewRouter(v *Validator, opts ...RouterOption) *Router {
	if v == nil {
		misconfigured("NewRouter(nil)", "needs a Validator")
	}
	r := &Router{v: v, routes: make(map[string]route)}
	for _, o := range opts {
		o(r)
	}
	return r
}

// The envelopes let a struct that does not declare the "type" or "id"
// member receive a message that carries it, without accepting other
// unknown members.
type envelope[T any] struct {
	Type string `json:"type"`
	Body T      `json:",embed"`
}

type idEnvelope[T any] struct {
	ID   jsontext.Value `json:"id"`
	Body T              `json:",embed"`
}

type typeIDEnvelope[T any] struct {
	Type string         `json:"type"`
	ID   jsontext.Value `json:"id"`
	Body T              `json:",embed"`
}

var badID = []fieldError{{field: "id", rule: RuleInvalid}}

// checkID refuses an "id" member that is not a correlation id
// ([wsguard.MessageID]): a client that sent one expects it back.
func checkID(raw jsontext.Value) error {
	if raw == nil {
		return nil
	}
	if _, ok := wsguard.ParseMessageID(raw); !ok {
		return invalidFields(badID, -1)
	}
	return nil
}

// newDecoder returns the strict decoder of a T from a message that may
// carry "type" (when withType) and "id" members T does not declare.
func newDecoder[T any](v *Validator, root reflect.Type, declT, declID bool) func([]byte) (T, error) {
	switch {
	case declT && declID:
		return func(data []byte) (T, error) {
			var msg T
			err := v.load(data, &msg, &msg, root)
			return msg, err
		}
	case declT:
		return func(data []byte) (T, error) {
			var env idEnvelope[T]
			if err := v.load(data, &env, &env.Body, root); err != nil {
				return env.Body, err
			}
			return env.Body, checkID(env.ID)
		}
	case declID:
		return func(data []byte) (T, error) {
			var env envelope[T]
			err := v.load(data, &env, &env.Body, root)
			return env.Body, err
		}
	}
	return func(data []byte) (T, error) {
		var env typeIDEnvelope[T]
		if err := v.load(data, &env, &env.Body, root); err != nil {
			return env.Body, err
		}
		return env.Body, checkID(env.ID)
	}
}

// Handle registers h for messages of the given type. T is the message's
// struct; it may declare the "type" member itself (a string) or leave it
// out, and the same for "id": a message's correlation id ([ID]) is
// accepted whether or not T declares it. Handle panics on an empty or
// already registered type, a nil h, or a T that is not a struct or
// declares "type" as something else than a string.
func Handle[T any](r *Router, typ string, h TypedFunc[T]) {
	root := structType[T]("Handle")
	if typ == "" {
		misconfigured(`Handle(r, "", h)`, "needs a message type")
	}
	if _, dup := r.routes[typ]; dup {
		misconfigured(fmt.Sprintf("Handle(r, %q, h)", typ), "the type is already registered")
	}
	if h == nil {
		misconfigured(fmt.Sprintf("Handle(r, %q, nil)", typ), "needs a handler")
	}
	decode := newDecoder[T](r.v, root, declaresType[T](), declares[T]("id"))
	r.routes[typ] = route{typ, func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		msg, err := decode(m.Data)
		if err != nil {
			return err
		}
		return h(ctx, c, msg)
	}}
}

// declares reports whether T has a member of the given name, of any type.
func declares[T any](name string) bool {
	var probe T
	err := json.Unmarshal([]byte(`{"`+name+`":null}`), &probe, decodeOptions)
	return !errors.Is(err, json.ErrUnknownName)
}

// declaresType reports whether T has its own "type" member, by asking the
// decoder itself, which knows the naming rules (tags, embedding) best. An
// envelope around such a T would hide its field.
func declaresType[T any]() bool {
	var probe T
	err := json.Unmarshal([]byte(`{"type":"t"}`), &probe, decodeOptions)
	switch {
	case err == nil:
		return true
	case errors.Is(err, json.ErrUnknownName):
		return false
	}
	panic(fmt.Sprintf("validate: Handle[%v]: its \"type\" member must be a string", reflect.TypeFor[T]()))
}

var (
	errUnknownType = errors.New("no handler for the message type")
	missingType    = []fieldError{{field: "type", rule: "required"}}
	nonStringType  = []fieldError{{field: "type", rule: RuleType, param: "string"}}
)

// ServeMessage implements wsguard.Handler.
func (r *Router) ServeMessage(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
	if err := r.v.precheck(m.Data); err != nil {
		return err
	}
	typ, err := messageType(m.Data)
	if err != nil {
		return err
	}
	rt, ok := r.routes[string(typ)]
	if !ok {
		// The type is the client's text and stays out of the log.
		if r.replyUnknown {
			return errlog.NewError(errlog.InvalidArgument, &replyError{code: CodeUnknownType, message: "unknown message type", offset: -1})
		}
		return errlog.NewError(errlog.Unsupported, errUnknownType)
	}
	ctx, mc := withMessage(ctx, m)
	mc.typ = rt.typ
	return rt.serve(ctx, c, m)
}

// messageType returns the value of the top-level "type" member. The
// fast path reads it from the front, where clients put it; anything else
// takes a full, tolerant parse. Either way the strict decode that follows
// sees the whole message.
func messageType(data []byte) ([]byte, error) {
	const prefix = `{"type":"`
	i := skipSpace(data, 0)
	if len(data)-i > len(prefix) && string(data[i:i+len(prefix)]) == prefix {
		rest := data[i+len(prefix):]
		for j := range len(rest) {
			switch rest[j] {
			case '"':
				if j == 0 {
					return nil, invalidFields(missingType, -1)
				}
				return rest[:j], nil
			case '\\':
				return slowMessageType(data)
			}
		}
	}
	return slowMessageType(data)
}

func slowMessageType(data []byte) ([]byte, error) {
	var probe struct {
		Type *string `json:"type"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		var syn *jsontext.SyntacticError
		if errors.As(err, &syn) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, decodeError(data, err, nil)
		}
		// The probe has one field: the only meaning it can fail on.
		return nil, invalidFields(nonStringType, -1)
	}
	if probe.Type == nil || *probe.Type == "" {
		return nil, invalidFields(missingType, -1)
	}
	return []byte(*probe.Type), nil
}
