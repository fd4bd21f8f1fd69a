// Package recovery turns the panic of a request's handler into an answer
// of its own and a line in the request's log.
package recovery

import (
	"errors"
	"net/http"

	"github.com/rs/zerolog"
)

// Recover logs the value of a panic on logger as "<what> handler
// panicked" and calls answer to give the client a 500 of the handler's
// kind, which says nothing of the panic. A handler defers it, as the
// deferred call itself (defer recovery.Recover(...)), so that it recovers.
// The log line goes out redacted as every line of the process does
// (logging.Redacting). http.ErrAbortHandler, net/http's way of aborting a
// response, is panicked again.
func Recover(logger *zerolog.Logger, what string, answer func()) {
	v := recover()
	if v == nil {
		return
	}
	if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
		panic(v)
	}
	logger.Error().Interface("panic", v).Msg(what + " handler panicked")
	answer()
}
