// Package errlog classifies what can go wrong on a guarded WebSocket endpoint
// and logs it.
//
// Every failure, before or after the upgrade, is reduced to one [Code]. A
// single table maps each code to the WebSocket close status sent after the
// upgrade, the HTTP status sent before it, the slog level it is logged at and
// the short text a client is allowed to see. Internal detail (the wrapped
// error) goes to the log only.
//
// Logging is redacted by construction: secrets are carried in [Secret], which
// logs as REDACTED; strings supplied by a client are carried in [Untrusted],
// which escapes control characters and cuts them to 256 bytes; an error's
// text, which may quote what a client sent, is logged through [ErrAttr],
// escaped the same way and cut to 4 KiB. The [ReplaceAttr] function is a
// backstop for loggers built by this package: it redacts attributes whose
// keys name credentials.
//
// errlog imports no other package of this module.
package errlog
