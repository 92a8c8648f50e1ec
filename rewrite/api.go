package rewrite

import "github.com/tombstone-proxy/tombstone/policy"

// Rule kinds, the values of tombstone_rewrites_total{kind}.
const (
	KindDelete = "delete" // DELETE turned into a soft-delete UPDATE
	KindSelect = "select" // a read filtered to live rows
	KindUpdate = "update" // UPDATE restricted to live rows
	KindMerge  = "merge"  // MERGE target restricted and its DELETE made soft
	KindCopy   = "copy"   // COPY ... TO filtered to live rows
	// KindCascade: a DELETE's ON DELETE CASCADE carried out on this
	// soft-delete child.
	KindCascade = "cascade"
	// KindRestore: deleted rows of this table made live again by a
	// restore (UPDATE ... SET deleted_at = NULL with allow_restore), the
	// restored table's and those its deletion took with it.
	KindRestore = "restore"
)

// Applied is one rule applied to one configured table.
type Applied struct {
	Table *policy.Table
	Kind  string // one of the Kind constants
}

// Statement holds what the proxy must know about one top-level statement of
// the input, in order. A simple Query may hold several statements; the
// server answers each with one CommandComplete, in the same order.
type Statement struct {
	// DeleteTag: the statement was a DELETE rewritten into an UPDATE, so
	// the server's "UPDATE n" must reach the client as "DELETE n".
	DeleteTag bool
	// Prepare is the name of an SQL-level PREPARE; DeleteTag then says
	// whether EXECUTE of that name must report DELETE.
	Prepare string
	// Execute is the name of an SQL-level EXECUTE; the proxy reports
	// DELETE when it recorded that name as a prepared delete.
	Execute string
	// Deallocate is the name of a DEALLOCATE; DeallocateAll is set for
	// DEALLOCATE ALL and DISCARD ALL.
	Deallocate    string
	DeallocateAll bool
	// SchemaChange: DDL that may change what the catalog says about the
	// soft-delete tables (children, columns, foreign keys); the proxy
	// reads the catalog again after it.
	SchemaChange bool
}

// Result is the outcome of rewriting one SQL text. A Result may be shared by
// the cache between connections and must not be modified.
type Result struct {
	SQL        string // the text to send upstream; the input when !Changed
	Changed    bool
	Statements []Statement
	Applied    []Applied
	spliced    bool // SQL is the input with edits made in it (splice.go), not a deparse
}
