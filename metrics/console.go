package metrics

import "github.com/prometheus/client_golang/prometheus"

// Console holds the trash console's collectors. It is separate from
// Metrics because the console is optional: a process without one
// exports none of these series.
type Console struct {
	loginFailures prometheus.Counter
	actions       *prometheus.CounterVec
}

// Console action results, the values of
// tombstone_console_actions_total{result}.
const (
	ResultOK       = "ok"
	ResultConflict = "conflict" // refused by the database; nothing changed
	ResultError    = "error"
)

// NewConsole creates the console's collectors and registers them on reg.
func NewConsole(reg prometheus.Registerer) *Console {
	c := &Console{
		loginFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tombstone_console_login_failures_total",
			Help: "Console requests refused for wrong credentials, and those the per-IP failure limit refused (429). A steady rise means someone is guessing passwords.",
		}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tombstone_console_actions_total",
			Help: "Restores and purges asked for in the console, by action (restore, purge) and result (ok, conflict, error).",
		}, []string{"action", "result"}),
	}
	reg.MustRegister(c.loginFailures, c.actions)
	return c
}

// LoginFailed counts one refused login.
func (c *Console) LoginFailed() { c.loginFailures.Inc() }

// Action counts one restore or purge by its result (a Result constant).
func (c *Console) Action(action, result string) { c.actions.WithLabelValues(action, result).Inc() }
