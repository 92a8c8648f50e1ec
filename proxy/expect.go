package proxy

import (
	"sync"
	"sync/atomic"

	"github.com/tombstone-proxy/tombstone/rewrite"
)

// expectKind is what the server will answer to one client message.
type expectKind uint8

const (
	expExecute expectKind = iota + 1 // Execute: CommandComplete, EmptyQueryResponse, PortalSuspended or an error
	expSync                          // Sync: ReadyForQuery
	expQuery                         // Query: one CommandComplete per statement, then ReadyForQuery
	expCall                          // FunctionCall: FunctionCallResponse, then ReadyForQuery
	expParse                         // Parse: ParseComplete or an error
	expClose                         // Close: CloseComplete or an error
)

// skippedAfterError reports whether the server skips messages of kind k
// after an error in the extended protocol, up to the next Sync.
func (k expectKind) skippedAfterError() bool {
	return k == expExecute || k == expParse || k == expClose
}

// expectation is one answer the server owes the client, in order. The
// client-to-server goroutine pushes them as it forwards messages and the
// server-to-client goroutine consumes them, so a CommandComplete can be
// matched to the statement it completes.
type expectation struct {
	kind expectKind
	// del (Execute): the portal runs a DELETE rewritten into an UPDATE.
	del bool
	// mask (Query): bit i set when statement i must report DELETE; extra
	// holds the flags of statements past the 64th (rare, allocated then).
	mask  uint64
	extra []bool
	idx   int // Query: CommandCompletes seen so far
	// refusals (Sync, Query, Call): refusals queued up to this sequence
	// number are settled once this entry's ReadyForQuery arrives (a
	// refused Parse the server skipped after an earlier error never
	// produces its marker error).
	refusals uint64

	// Effects on the session's prepared statements, applied to the
	// queue's record when the server confirms them (see preparedSet):
	//
	// record, name, prepared (Parse, Close of a statement): name then
	// holds prepared (nil: nothing followed); record is false when the
	// message changes nothing the set holds.
	record   bool
	name     string
	prepared *rewrite.Statement
	// run (Execute): what the portal runs, when running it has an effect.
	run *rewrite.Statement
	// stmts (Query): the Query's statements when one of them has an
	// effect; statement i's is applied at its CommandComplete.
	stmts []rewrite.Statement
}

// hasEffects reports whether e carries effects not yet applied.
func (e *expectation) hasEffects() bool {
	if e.record || e.run != nil {
		return true
	}
	for i := e.idx; i < len(e.stmts); i++ {
		if hasEffect(&e.stmts[i]) {
			return true
		}
	}
	return false
}

// deleteAt reports whether statement i of a Query must report DELETE.
func (e *expectation) deleteAt(i int) bool {
	if i < 64 {
		return e.mask&(1<<uint(i)) != 0
	}
	i -= 64
	return i < len(e.extra) && e.extra[i]
}

// setDelete flags statement i of a Query.
func (e *expectation) setDelete(i int) {
	if i < 64 {
		e.mask |= 1 << uint(i)
		return
	}
	for len(e.extra) <= i-64 {
		e.extra = append(e.extra, false)
	}
	e.extra[i-64] = true
}

// expectQueue is a FIFO ring of expectations shared by a session's two
// goroutines. It reuses its storage: steady state allocates nothing.
type expectQueue struct {
	mu   sync.Mutex
	buf  []expectation
	head int
	n    int
	// prepared is the record of the session's prepared statements as the
	// server has confirmed them.
	prepared preparedSet
	// stale is set when an entry with effects is dropped unapplied (its
	// message failed or was skipped): the client-to-server goroutine's
	// projection, which assumed they would succeed, must be rebuilt.
	stale atomic.Bool
}

func (q *expectQueue) push(e expectation) {
	q.mu.Lock()
	if q.n == len(q.buf) {
		nb := make([]expectation, max(8, 2*len(q.buf)))
		for i := 0; i < q.n; i++ {
			nb[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = nb, 0
	}
	q.buf[(q.head+q.n)%len(q.buf)] = e
	q.n++
	q.mu.Unlock()
}

func (q *expectQueue) at(i int) *expectation { return &q.buf[(q.head+i)%len(q.buf)] }

func (q *expectQueue) popLocked() {
	*q.at(0) = expectation{}
	q.head = (q.head + 1) % len(q.buf)
	q.n--
}

// dropLocked pops the head entry, whose message failed, was skipped or
// ended without completing: its effects never happen.
func (q *expectQueue) dropLocked() {
	if q.at(0).hasEffects() {
		q.stale.Store(true)
	}
	q.popLocked()
}

// commandComplete consumes the answer to one statement, applies its
// effect, and reports whether its tag must read DELETE.
func (q *expectQueue) commandComplete() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return false
	}
	switch e := q.at(0); e.kind {
	case expExecute:
		del := e.del
		if e.run != nil {
			q.prepared.apply(e.run)
		}
		q.popLocked()
		return del
	case expQuery:
		if e.idx < len(e.stmts) {
			q.prepared.apply(&e.stmts[e.idx])
		}
		del := e.deleteAt(e.idx)
		e.idx++
		return del
	}
	return false
}

// parseOrCloseComplete consumes a ParseComplete or CloseComplete and
// applies the message's effect.
func (q *expectQueue) parseOrCloseComplete(kind expectKind) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return
	}
	if e := q.at(0); e.kind == kind {
		if e.record {
			q.prepared.set(e.name, e.prepared)
		}
		q.popLocked()
	}
}

// emptyOrSuspended consumes an EmptyQueryResponse or PortalSuspended.
func (q *expectQueue) emptyOrSuspended() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return
	}
	switch e := q.at(0); e.kind {
	case expExecute:
		// A suspended portal's effect comes with the Execute that
		// completes it, if any.
		q.dropLocked()
	case expQuery:
		e.idx++
	}
}

// failedDelete reports whether the statement an ErrorResponse answers is
// a DELETE Tombstone rewrote into an UPDATE (so the error may be about
// the UPDATE the client did not write).
func (q *expectQueue) failedDelete() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return false
	}
	switch e := q.at(0); e.kind {
	case expExecute:
		return e.del
	case expQuery:
		return e.deleteAt(e.idx)
	}
	return false
}

// errorResponse: after an error in the extended protocol the server skips
// every message up to the next Sync, so the failed message and the
// skipped ones get no answer and have no effect.
func (q *expectQueue) errorResponse() {
	q.mu.Lock()
	for q.n > 0 && q.at(0).kind.skippedAfterError() {
		q.dropLocked()
	}
	q.mu.Unlock()
}

// readyForQuery consumes the entry a ReadyForQuery answers and returns
// its refusal sequence number (0 when none was pending). The statements
// of a Query that did not complete (an error ends the Query) have no
// effect.
func (q *expectQueue) readyForQuery() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.n > 0 {
		e := q.at(0)
		if e.kind.skippedAfterError() {
			q.dropLocked() // cannot happen with a well-behaved server; resynchronise
			continue
		}
		r := e.refusals
		q.dropLocked()
		return r
	}
	return 0
}

// project rebuilds a projection of the prepared statements (see
// preparedSet) from the confirmed record and the effects still pending,
// in order, if an effect was dropped since the last rebuild.
func (q *expectQueue) project(p *preparedSet) {
	if !q.stale.Load() {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.stale.Store(false)
	clear(*p)
	for name, st := range q.prepared {
		p.set(name, st)
	}
	for i := 0; i < q.n; i++ {
		e := q.at(i)
		switch {
		case e.record:
			p.set(e.name, e.prepared)
		case e.run != nil:
			p.apply(e.run)
		}
		for j := e.idx; j < len(e.stmts); j++ {
			p.apply(&e.stmts[j])
		}
	}
}

// copyEnded handles CopyDone or CopyFail from the client. In copy-in mode
// started by an Execute the server ignores Sync (libpq sends one right
// after Execute and another after CopyDone), so a Sync queued after that
// Execute gets no ReadyForQuery and is dropped.
func (q *expectQueue) copyEnded() {
	q.mu.Lock()
	defer q.mu.Unlock()
	last := q.n - 1
	for last >= 0 && q.at(last).kind == expSync {
		last--
	}
	if last < 0 || last == q.n-1 || q.at(last).kind != expExecute {
		return
	}
	for q.n-1 > last {
		*q.at(q.n - 1) = expectation{}
		q.n--
	}
}

// len reports the number of pending expectations.
func (q *expectQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}
