package validate

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/go-playground/validator/v10"

	"github.com/wsguard/kit/errlog"
)

// DefaultMaxDepth is the deepest nesting of objects and arrays a message may
// have unless [WithMaxDepth] says otherwise. Application messages are
// shallow; a deep one is an attempt to make the decoder recurse.
const DefaultMaxDepth = 32

// Validator decodes untrusted JSON strictly and checks the result against
// the struct's `validate` tags. Build one at start-up with [New] and share
// it: it caches what it learns about each struct type, and its rules cannot
// change once it exists. It is safe for concurrent use.
type Validator struct {
	v        *validator.Validate
	maxDepth int
	maxBody  int64
}

// Option configures a [Validator].
type Option func(*options)

type options struct {
	maxDepth int
	maxBody  int64
	rules    []rule
}

type rule struct {
	tag string
	fn  validator.Func
}

// WithMaxDepth sets the deepest nesting of objects and arrays accepted
// ([DefaultMaxDepth] by default). The top-level object is depth 1, so n
// must be >= 1; zero is refused.
func WithMaxDepth(n int) Option {
	return func(o *options) {
		if n < 1 {
			misconfigured(fmt.Sprintf("WithMaxDepth(%d)", n), "must be >= 1")
		}
		o.maxDepth = n
	}
}

// WithMaxBody sets the largest request body [Body] reads, in bytes
// ([DefaultMaxBody] by default); a larger one is refused with 413. n must
// be >= 1; zero is refused.
func WithMaxBody(n int64) Option {
	return func(o *options) {
		if n < 1 {
			misconfigured(fmt.Sprintf("WithMaxBody(%d)", n), "must be >= 1")
		}
		o.maxBody = n
	}
}

// WithRule registers a custom rule, used in `validate` tags like the
// built-in ones. Rules are registered here, before anything is validated,
// because the underlying validator may not be changed while in use. An
// empty or reserved tag and a nil function are refused.
func WithRule(tag string, fn validator.Func) Option {
	return func(o *options) {
		if tag == "" {
			misconfigured(`WithRule("", ...)`, "needs a tag")
		}
		if fn == nil {
			misconfigured(fmt.Sprintf("WithRule(%q, nil)", tag), "needs a function")
		}
		o.rules = append(o.rules, rule{tag, fn})
	}
}

// New returns a Validator. It panics on an invalid option, as the package
// documentation describes: a misconfigured validator must not start
// serving.
func New(opts ...Option) *Validator {
	o := options{maxDepth: DefaultMaxDepth, maxBody: DefaultMaxBody}
	for _, opt := range opts {
		opt(&o)
	}
	// WithRequiredStructEnabled makes `required` on a struct field mean
	// something; WithTagNameFuncBlankOmit keeps the fields of an embedded
	// struct at their parent's level, where JSON puts them.
	v := validator.New(validator.WithRequiredStructEnabled(), validator.WithTagNameFuncBlankOmit())
	v.RegisterTagNameFunc(jsonName)
	for _, r := range o.rules {
		if err := register(v, r); err != nil {
			misconfigured(fmt.Sprintf("WithRule(%q, ...)", r.tag), err.Error())
		}
	}
	return &Validator{v: v, maxDepth: o.maxDepth, maxBody: o.maxBody}
}

// register registers r with v. The validator refuses some tags with an
// error and panics on others (a restricted one); both come back as the
// error.
func register(v *validator.Validate, r rule) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	return v.RegisterValidation(r.tag, r.fn)
}

// jsonName is the name the client uses for a field: its JSON name as the
// decoder sees it, so that a field error names what the client sent.
// Embedded structs without a name are inlined by JSON and get "".
func jsonName(f reflect.StructField) string {
	name, opts, hasOpts := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" && (hasOption(opts, "inline") || f.Anonymous && indirect(f.Type).Kind() == reflect.Struct) {
		return ""
	}
	// `json:"-"` hides the field from JSON; `json:"-,"` names it "-".
	if name == "" || name == "-" && !hasOpts {
		return f.Name
	}
	return name
}

func hasOption(opts, want string) bool {
	for opt := range strings.SplitSeq(opts, ",") {
		if opt == want {
			return true
		}
	}
	return false
}

func indirect(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// Unmarshal decodes data strictly into dst, a pointer to a struct, and
// validates the result. Every failure is an errlog.InvalidArgument error
// that a wsguard server answers with an error reply (see the package
// documentation); a dst that is not a pointer to a struct is an
// errlog.Internal error.
func (v *Validator) Unmarshal(data []byte, dst any) error {
	rt := reflect.TypeOf(dst)
	if rt == nil || rt.Kind() != reflect.Pointer || rt.Elem().Kind() != reflect.Struct {
		return errlog.NewError(errlog.Internal, fmt.Errorf("validate: Unmarshal into %v, want a pointer to a struct", rt))
	}
	if err := v.precheck(data); err != nil {
		return err
	}
	return v.load(data, dst, dst, rt.Elem())
}

// load decodes data into dst and checks s, which is dst or the part of it
// that holds the message's fields; root is s's struct type.
func (v *Validator) load(data []byte, dst, s any, root reflect.Type) error {
	if err := decode(data, dst, root); err != nil {
		return err
	}
	return v.check(s, root)
}

// Struct validates s, a struct or a pointer to one, as [Validator.Unmarshal]
// does after decoding: failures are errlog.InvalidArgument errors listing
// the fields by their JSON names.
func (v *Validator) Struct(s any) error {
	rt := reflect.TypeOf(s)
	if rt == nil || indirect(rt).Kind() != reflect.Struct {
		return errlog.NewError(errlog.Internal, fmt.Errorf("validate: Struct of %v, want a struct", rt))
	}
	return v.check(s, indirect(rt))
}

// check runs the struct's rules and turns the result into a reply that
// names fields and rules only: validator's own error carries the submitted
// values, so it is dropped here and goes neither to the client nor to the
// log.
func (v *Validator) check(s any, root reflect.Type) error {
	err := v.v.Struct(s)
	if err == nil {
		return nil
	}
	ve, ok := err.(validator.ValidationErrors)
	if !ok {
		return errlog.NewError(errlog.Internal, fmt.Errorf("validate: %w", err))
	}
	prefix := root.Name() + "."
	fields := make([]fieldError, 0, len(ve))
	for _, fe := range ve {
		ns := fe.Namespace()
		if root.Name() != "" {
			ns = strings.TrimPrefix(ns, prefix)
		}
		fields = append(fields, fieldError{field: namespacePath(root, ns), rule: fe.Tag(), param: fe.Param()})
	}
	return invalidFields(fields, -1)
}
