package wsguard

import (
	"context"
	"fmt"
	"math"
	"strings"
)

// misconfiguration is what a constructor panics with on a configuration
// mistake: the option or call as it was made, then what is wrong with it.
type misconfiguration string

func (m misconfiguration) Error() string { return string(m) }

// misconfigured panics with the message the package documentation
// promises for a configuration mistake.
func misconfigured(call, why string) {
	panic(misconfiguration("wsguard: " + call + ": " + why))
}

// CheckOptions applies opts as [New] does and returns the first mistake
// among them as an error, with the message New would panic with, instead
// of panicking: for options built from a user's input (flags, a
// configuration file), which a program reports rather than crashes on.
// Options that pass are accepted by New.
func CheckOptions(opts ...Option) (err error) {
	defer func() {
		if p := recover(); p != nil {
			m, ok := p.(misconfiguration)
			if !ok {
				panic(p)
			}
			err = m
		}
	}()
	New(HandlerFunc(func(context.Context, *Conn, *Message) error { return nil }), opts...)
	return nil
}

// mustPositiveRate checks a rate and burst given to call.
func mustPositiveRate(call string, perSecond float64, burst int) {
	if !(perSecond > 0) || math.IsInf(perSecond, 1) {
		misconfigured(call, "the rate must be a finite number > 0")
	}
	if burst < 1 {
		misconfigured(call, "the burst must be >= 1")
	}
}

// rateCall spells a call with a rate and a burst.
func rateCall(name string, perSecond float64, burst int) string {
	return fmt.Sprintf("%s(%g, %d)", name, perSecond, burst)
}

// mustConnCaps checks the caps of a connection limit given to call.
func mustConnCaps(call string, total, perIP int) {
	if total < 1 || perIP < 1 {
		misconfigured(call, "both caps must be >= 1")
	}
}

// isToken reports whether s is an HTTP token (RFC 9110, section 5.6.2).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		b := s[i]
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0:
		default:
			return false
		}
	}
	return true
}
