package schematool

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
)

// Statement is one statement of a Step.
type Statement struct {
	SQL string
	// Concurrently: CREATE or DROP INDEX CONCURRENTLY, which cannot run
	// in a transaction block and waits for older transactions without
	// blocking writes, so lock_timeout does not apply to it.
	Concurrently bool
}

// Step is one unit of a migration.
type Step struct {
	Title string
	// Transaction: the statements run in one transaction (each waiting
	// at most lock_timeout for its lock); otherwise one by one.
	Transaction bool
	Statements  []Statement
	// Then runs, in one transaction, after Statements: the swap that
	// follows a concurrent build.
	Then []Statement
	// Note is what the application must know about the change, empty
	// for nothing.
	Note string
	// Blocking, when set, says why the step holds a lock that blocks
	// reads or writes for longer than one short statement; such a step
	// runs only when asked (--allow-blocking).
	Blocking string
	order    int
}

// The order steps run in: columns first (indexes, grants and helpers
// name them), the helpers and triggers, then what reads or replaces
// indexes, the optional objects last.
const (
	orderColumns = iota
	orderHelpers
	orderAudit
	orderGrants
	orderIndexes
	orderExclusion
	orderViews
	orderRLS
)

// Options are what migrate may do beyond what it always does.
type Options struct {
	Views bool // create the active_<table> views
	RLS   bool // enable row-level security with Tombstone's policies
	// AllowBlocking runs the steps that block reads and writes of a
	// table for longer than a short statement.
	AllowBlocking bool
}

// Plan is what migrate does.
type Plan struct {
	Steps []Step
	// Blocked are the steps left out because they block and
	// AllowBlocking is off.
	Blocked []Step
	// Cannot lists what migrate cannot do safely, each with why.
	Cannot []string
}

// NewPlan lists the steps that fix what Check reports, in the order they
// must run. Each is planned from the database's present state, so a run
// interrupted halfway is finished by the next and a second run after a
// complete one plans nothing.
func NewPlan(f *Facts, opts Options) *Plan {
	p := &Plan{}
	planned := map[string]bool{}
	for _, is := range analyze(f) {
		if is.step != nil && planned[is.step.Title] {
			continue // one grant serves two tables' DELETEs
		}
		if is.step != nil {
			planned[is.step.Title] = true
		}
		switch {
		case is.step != nil && is.option == "views" && !opts.Views, is.step != nil && is.option == "rls" && !opts.RLS:
		case is.step != nil && is.step.Blocking != "" && !opts.AllowBlocking:
			p.Blocked = append(p.Blocked, *is.step)
		case is.step != nil:
			p.Steps = append(p.Steps, *is.step)
		case is.cannot != "" && (is.option == "" || (is.option == "views" && opts.Views) || (is.option == "rls" && opts.RLS)):
			p.Cannot = append(p.Cannot, is.section+": "+is.Message+"\n  why: "+is.cannot)
		}
	}
	sort.SliceStable(p.Steps, func(i, j int) bool { return p.Steps[i].order < p.Steps[j].order })
	return p
}

// hash is a short digest of s, for the markers migrate leaves in
// comments.
func hash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:8])
}
