package proxy

import "sync"

// expectKind is what the server will answer to one client message.
type expectKind uint8

const (
	expExecute expectKind = iota + 1 // Execute: CommandComplete, EmptyQueryResponse, PortalSuspended or an error
	expSync                          // Sync: ReadyForQuery
	expQuery                         // Query: one CommandComplete per statement, then ReadyForQuery
	expCall                          // FunctionCall: FunctionCallResponse, then ReadyForQuery
)

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

// commandComplete consumes the answer to one statement and reports
// whether its tag must read DELETE.
func (q *expectQueue) commandComplete() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return false
	}
	switch e := q.at(0); e.kind {
	case expExecute:
		del := e.del
		q.popLocked()
		return del
	case expQuery:
		del := e.deleteAt(e.idx)
		e.idx++
		return del
	}
	return false
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
		q.popLocked()
	case expQuery:
		e.idx++
	}
}

// errorResponse: after an error in the extended protocol the server skips
// every message up to the next Sync, so pending Executes get no answer.
func (q *expectQueue) errorResponse() {
	q.mu.Lock()
	for q.n > 0 && q.at(0).kind == expExecute {
		q.popLocked()
	}
	q.mu.Unlock()
}

// readyForQuery consumes the entry a ReadyForQuery answers and returns
// its refusal sequence number (0 when none was pending).
func (q *expectQueue) readyForQuery() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.n > 0 {
		e := q.at(0)
		if e.kind == expExecute {
			q.popLocked() // cannot happen with a well-behaved server; resynchronise
			continue
		}
		r := e.refusals
		q.popLocked()
		return r
	}
	return 0
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
