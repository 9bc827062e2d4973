package auth

import (
	"errors"
	"net/http"
	"strings"
)

// bearerProtocol prefixes the Sec-WebSocket-Protocol entry that carries a
// token: the one header a browser's WebSocket constructor lets a page set.
const bearerProtocol = "bearer."

// protocolHeader is Sec-WebSocket-Protocol spelled as net/textproto
// canonicalizes it, so that looking it up does not make the canonical
// key again on every handshake.
const protocolHeader = "Sec-Websocket-Protocol"

// places says where, beside the Authorization header and the subprotocol,
// a token may be found.
type places struct {
	cookie string // cookie name, or "" for none
	query  string // query parameter, or "" for none (the default)
}

// extract returns the bearer token of r, or "" when r carries none, and
// the request to pass on: r itself, or a copy without the subprotocol
// entry and the query parameter that carried the token, so that nothing
// after this middleware can echo or log it.
//
// The explicit places (the Authorization header, the subprotocol, the
// query parameter) may hold one token between them: RFC 6750 section 2
// forbids a client to send more than one, and a server that picked one
// would let a proxy's choice and the application's differ. The cookie,
// which a browser attaches on its own, is read only when no explicit
// place holds a token. Every refusal is Unauthenticated.
func (pl places) extract(r *http.Request) (Token, *http.Request, error) {
	found := make([]Token, 0, 3) // header, subprotocol, query
	auth, err := fromAuthorization(r.Header.Values("Authorization"))
	if err != nil {
		return "", r, err
	}
	if auth != "" {
		found = append(found, auth)
	}
	proto, rest, err := fromSubprotocols(r.Header.Values(protocolHeader))
	if err != nil {
		return "", r, err
	}
	var query []string
	if pl.query != "" && r.URL.RawQuery != "" {
		query = r.URL.Query()[pl.query]
	}
	if proto != "" || len(query) > 0 {
		r = r.Clone(r.Context())
	}
	if proto != "" {
		found = append(found, proto)
		r.Header.Set(protocolHeader, strings.Join(rest, ", "))
	}
	if len(query) > 0 {
		q := r.URL.Query()
		q.Del(pl.query)
		r.URL.RawQuery = q.Encode()
		r.RequestURI = r.URL.RequestURI()
		if len(query) > 1 {
			return "", r, invalidf("malformed request", errors.New("more than one token query parameter"))
		}
		found = append(found, Token(query[0]))
	}
	switch {
	case len(found) > 1:
		return "", r, invalidf("malformed request", errors.New("token in more than one place"))
	case len(found) == 1:
		if found[0] == "" {
			return "", r, invalidf("malformed request", errors.New("empty token"))
		}
		return found[0], r, nil
	case pl.cookie != "":
		tok, err := fromCookies(r.CookiesNamed(pl.cookie))
		return tok, r, err
	}
	return "", r, nil
}

// fromAuthorization returns the token of an "Authorization: Bearer"
// header, or "" when there is none or it names another scheme (Basic
// credentials are not ours to judge).
func fromAuthorization(values []string) (Token, error) {
	switch len(values) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", invalidf("malformed request", errors.New("more than one Authorization header"))
	}
	scheme, tok, _ := strings.Cut(values[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", nil
	}
	tok = strings.Trim(tok, " ")
	if tok == "" {
		return "", invalidf("malformed request", errors.New("empty bearer token"))
	}
	return Token(tok), nil
}

// fromSubprotocols returns the token of a "bearer.<token>" entry among the
// offered subprotocols and the other entries. A token entry needs a
// companion: a browser fails a handshake whose response selects no
// protocol, and the server must never select (echo) the token entry.
func fromSubprotocols(values []string) (tok Token, rest []string, err error) {
	found := 0
	for _, v := range values {
		for e := range strings.SplitSeq(v, ",") {
			// Trimmed as the transport trims the entries it selects from.
			e = strings.TrimSpace(e)
			switch {
			case e == "":
			case len(e) >= len(bearerProtocol) && strings.EqualFold(e[:len(bearerProtocol)], bearerProtocol):
				found++
				tok = Token(e[len(bearerProtocol):])
			default:
				rest = append(rest, e)
			}
		}
	}
	switch {
	case found == 0:
		return "", rest, nil
	case found > 1:
		return "", nil, invalidf("malformed request", errors.New("more than one bearer subprotocol entry"))
	case tok == "":
		return "", nil, invalidf("malformed request", errors.New("empty bearer subprotocol entry"))
	case len(rest) == 0:
		return "", nil, invalidf("malformed request", errors.New("bearer subprotocol entry without an application subprotocol"))
	}
	return tok, rest, nil
}

// fromCookies returns the token of the named cookie. Two cookies of that
// name are refused: a sibling subdomain can plant one (cookie tossing),
// and which comes first is not the server's choice.
func fromCookies(cs []*http.Cookie) (Token, error) {
	switch len(cs) {
	case 0:
		return "", nil
	case 1:
		if cs[0].Value == "" {
			return "", invalidf("malformed request", errors.New("empty token cookie"))
		}
		return Token(cs[0].Value), nil
	}
	return "", invalidf("malformed request", errors.New("more than one token cookie"))
}
