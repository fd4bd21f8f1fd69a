package config

import (
	"errors"

	"github.com/rs/zerolog"
)

// Kube is the access to the API server.
type Kube struct {
	// QPS is RUNBOAT_KUBE_QPS: the requests per second a process makes to
	// the API server, on average (client-go's rate limiter, one per
	// process). 0, the default, is the binary's own: 50 for a job; none for
	// the function, whose instances each serve one request at a time on
	// Lambda (a limit per instance bounds nothing) and many at once in
	// HTTP mode, where a limit per process would queue every delivery
	// behind the others: the API server's own priority and fairness is
	// what protects it.
	QPS float32 `env:"KUBE_QPS" envDefault:"0"`
	// Burst is RUNBOAT_KUBE_BURST: the requests a process may make at once
	// above QPS. 0, the default, is twice QPS.
	Burst int `env:"KUBE_BURST" envDefault:"0"`
}

// Validate reports a negative rate or burst.
func (k Kube) Validate() error {
	var errs []error
	if k.QPS < 0 {
		errs = append(errs, fieldErr("KUBE_QPS", "must be >= 0, got %g", k.QPS))
	}
	if k.Burst < 0 {
		errs = append(errs, fieldErr("KUBE_BURST", "must be >= 0, got %d", k.Burst))
	}
	return errors.Join(errs...)
}

// Limits returns the rate and burst to use: the settings, with defaultQPS
// for a QPS of 0 (a negative one is no limit, as in client-go) and twice
// the rate for a burst of 0.
func (k Kube) Limits(defaultQPS float32) (qps float32, burst int) {
	qps, burst = k.QPS, k.Burst
	if qps == 0 {
		qps = defaultQPS
	}
	if burst == 0 {
		burst = int(2 * qps)
	}
	return qps, max(burst, 1)
}

// MarshalZerologObject logs the settings.
func (k Kube) MarshalZerologObject(e *zerolog.Event) {
	e.Float32("kube_qps", k.QPS).Int("kube_burst", k.Burst)
}
