// Package proxy is Tombstone's wire layer: it accepts PostgreSQL client
// connections, opens one upstream connection per client, relays the
// startup and authentication exchange untouched, and then forwards every
// message as raw bytes, decoding only the few it must inspect (Query,
// Parse, Bind, Execute, Close, Sync, FunctionCall, CommandComplete,
// ParameterStatus, ReadyForQuery, and ErrorResponse when a refusal is
// pending). Statement text goes through the rewrite package; command tags
// of rewritten DELETEs are restored. A FunctionCall may only call a
// large-object function.
//
// It owns sockets, framing and per-connection state, and nothing else. It
// imports the standard library, pgproto3 (only to encode the rare messages
// it writes itself), and the policy, catalog, rewrite and metrics
// packages; never internal/config (internal/server turns the
// configuration into Options). Only cmd/ (through internal/server) and
// the test harness internal/proxytest import it.
package proxy
