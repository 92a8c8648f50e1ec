package proxy

import "github.com/tombstone-proxy/tombstone/rewrite"

// preparedSet is what the proxy follows of a session's prepared
// statements, by name: the facts of each statement whose command tag or
// effect matters, that is a DELETE rewritten into an UPDATE (its
// "UPDATE n" must read "DELETE n"), or an SQL EXECUTE, PREPARE,
// DEALLOCATE or DISCARD ALL prepared with Parse, whose effect happens
// when it runs. Other statements are absent, so a session that never
// deletes stores nothing. Parse and SQL PREPARE share one namespace in
// PostgreSQL: a statement Parsed under a name can be run by SQL EXECUTE
// and the other way round. The unnamed statement is "".
//
// A session keeps two: the record in its expectation queue, changed only
// when the server confirms an effect (a failed PREPARE under a name that
// is taken changes nothing), and the projection its client-to-server
// goroutine computes tags from, which also holds the effects forwarded and
// not yet answered, as if they will succeed. When one fails the server
// skips the rest of its Query, or its pipeline up to Sync, so nothing
// computed from it there is answered; the projection is rebuilt from the
// record before the next message. Only a message the client sent past
// that Query or Sync without waiting for the answer gets its tag from
// the effect that failed.
type preparedSet map[string]*rewrite.Statement

// sqlPreparedDelete is what a DELETE prepared with SQL PREPARE runs. It
// is never modified.
var sqlPreparedDelete = &rewrite.Statement{DeleteTag: true}

// deletes reports whether running st completes with a tag that must read
// DELETE.
func (p preparedSet) deletes(st *rewrite.Statement) bool {
	// An EXECUTE completes with the tag of what it runs, which may be an
	// EXECUTE prepared with Parse; the server stops a cycle with an
	// error, and so does the bound here.
	for i := 0; st != nil && st.Execute != "" && i <= len(p); i++ {
		st = p[st.Execute]
	}
	return st != nil && st.Execute == "" && st.DeleteTag && st.Prepare == ""
}

// hasEffect reports whether running st changes what a preparedSet holds.
// A PREPARE of anything but a DELETE does not: it succeeds only under a
// name that is free, which the set does not hold.
func hasEffect(st *rewrite.Statement) bool {
	return st.Prepare != "" && st.DeleteTag || st.Deallocate != "" || st.DeallocateAll
}

// followed reports whether a statement prepared with Parse is kept in a
// preparedSet.
func followed(st *rewrite.Statement) bool {
	return st.DeleteTag || st.Execute != "" || hasEffect(st)
}

// apply records the effect of running st.
func (p *preparedSet) apply(st *rewrite.Statement) {
	switch {
	case st.Prepare != "":
		if st.DeleteTag {
			p.set(st.Prepare, sqlPreparedDelete)
		}
	case st.Deallocate != "":
		p.set(st.Deallocate, nil)
	case st.DeallocateAll:
		// DEALLOCATE ALL and DISCARD ALL drop the named statements; the
		// unnamed one lives apart in the server and stays.
		for name := range *p {
			if name != "" {
				delete(*p, name)
			}
		}
	}
}

// set records that name now holds st; nil means nothing the set follows.
func (p *preparedSet) set(name string, st *rewrite.Statement) {
	if st == nil {
		if len(*p) > 0 {
			delete(*p, name)
		}
		return
	}
	if *p == nil {
		*p = preparedSet{}
	}
	(*p)[name] = st
}
