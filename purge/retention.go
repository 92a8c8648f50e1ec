package purge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tombstone-proxy/tombstone/policy"
)

// Options configures a retention purge.
type Options struct {
	// OlderThan, when positive, replaces every table's retention.
	OlderThan time.Duration
	// Tables limits the purge to these soft-delete tables, with their
	// partitions and inheritance children; empty is every one. A schema
	// of "" matches the name in any schema.
	Tables []policy.RelName
	// Batch is the most rows one transaction removes from one table.
	Batch int
	// DryRun runs the purge in one transaction that is rolled back, so
	// the counts are exactly what a purge would remove now (children
	// first included) and nothing is removed.
	DryRun bool
	// Actor and Reason go into the audit log; an empty Reason is NULL.
	Actor, Reason string
	// Progress, when set, is called after each batch commits.
	Progress func(Progress)
	// Log receives one line per table with its counts; nil logs nothing.
	Log *slog.Logger
}

// Progress is where a purge stands after a batch.
type Progress struct {
	Table   policy.RelName
	Removed int64 // rows of Table removed so far in this run
	Batches int
}

// Result is what a purge did to one table.
type Result struct {
	Table     policy.RelName
	Retention time.Duration
	// Cutoff: rows deleted before it are past retention. Fixed when the
	// run starts, from the database's clock.
	Cutoff  time.Time
	Removed int64
	Batches int
	// Held counts the rows past retention that are still there because
	// rows reference them (their children must go first, and a child that
	// is live or within its own retention stays, so its parent does too),
	// or because another transaction had them locked.
	Held   int64
	HeldBy []Hold
	// Skipped says why the table was not purged; "" when it was.
	Skipped string
}

// Hold is one reason rows past retention are kept.
type Hold struct {
	By   string // the referencing table and key
	Rows int64  // rows of the table that it references
}

// Report is a whole purge, table by table in the order they were purged.
type Report struct {
	DryRun bool
	Tables []*Result
}

// Removed is the number of rows removed from every table.
func (r *Report) Removed() int64 {
	var n int64
	for _, t := range r.Tables {
		n += t.Removed
	}
	return n
}

// target is one table a purge works through.
type target struct {
	rel       *relation
	deletedAt string
	result    *Result
}

// ErrBatch is returned for a batch size that is not positive.
var ErrBatch = errors.New("the batch size must be at least 1")

// Run removes the rows of the policy's soft-delete tables that were
// soft-deleted longer ago than each table's retention (or OlderThan).
//
// Each batch is one short READ COMMITTED transaction on one table: it
// locks up to Batch rows past retention that nothing references (SKIP
// LOCKED, so it waits for no one), then, in a second statement whose
// snapshot is taken after those locks, removes the ones that nothing
// references still and writes their audit rows. A row that could start
// referencing a locked row has to lock it too, so no reference can appear
// between that check and the commit: the database never cascades,
// nulls or refuses anything on a purge's behalf. Tables are purged
// children first, so a deleted child past retention is gone before its
// parent is looked at; rows still referenced are counted in Held.
//
// Stopping it (ctx cancelled) loses at most the batch under way: each
// batch commits on its own, and a new run starts over with a cutoff
// computed from its own start. The report returned with ctx's error
// counts what was committed.
func Run(ctx context.Context, conn *pgx.Conn, p *policy.Policy, opts Options) (*Report, error) {
	if opts.Batch < 1 {
		return nil, ErrBatch
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	report := &Report{DryRun: opts.DryRun}
	var q querier = conn
	begin := func(ctx context.Context) (pgx.Tx, error) {
		return conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	}
	if opts.DryRun {
		outer, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
		if err != nil {
			return nil, fmt.Errorf("begin the dry run's transaction: %w", err)
		}
		defer outer.Rollback(context.Background())
		// Each batch is a savepoint of the one transaction; rolling it
		// back at the end undoes them all.
		q, begin = outer, outer.Begin
	}
	var now time.Time
	if err := q.QueryRow(ctx, "SELECT pg_catalog.now()").Scan(&now); err != nil {
		return nil, fmt.Errorf("read the database's clock: %w", err)
	}
	if err := checkAudit(ctx, q, p.Audit()); err != nil {
		return nil, err
	}
	rs := newRelations(q, p)
	targets, err := selectTargets(ctx, rs, p, opts, now, report)
	if err != nil {
		return nil, err
	}
	// A cycle of references can leave a parent behind that a later table's
	// batch freed; another pass takes it, as long as passes remove rows.
	for pass := 0; pass <= len(targets); pass++ {
		removed := int64(0)
		for _, tg := range targets {
			n, err := purgeTable(ctx, begin, tg, p.Audit(), opts)
			removed += n
			if err != nil {
				// What the committed batches removed, for whoever reads
				// only the logs.
				for _, tg := range targets {
					r := tg.result
					log.Warn("purge stopped", "table", r.Table.String(), "removed", r.Removed, "batches", r.Batches, "cutoff", r.Cutoff, "dry_run", opts.DryRun)
				}
				return report, err
			}
		}
		if removed == 0 {
			break
		}
	}
	for _, tg := range targets {
		if err := holds(ctx, q, tg); err != nil {
			return report, err
		}
		r := tg.result
		log.Info("purge", "table", r.Table.String(), "removed", r.Removed, "batches", r.Batches, "held", r.Held, "cutoff", r.Cutoff, "dry_run", opts.DryRun)
	}
	for _, r := range report.Tables {
		if r.Skipped != "" {
			log.Info("purge skipped", "table", r.Table.String(), "reason", r.Skipped)
		}
	}
	return report, nil
}

// selectTargets lists the tables to purge, children first, and adds a
// Result for each table considered to report.
func selectTargets(ctx context.Context, rs *relations, p *policy.Policy, opts Options, now time.Time, report *Report) ([]*target, error) {
	matched := make([]bool, len(opts.Tables))
	var rels []*relation
	var missing []*Result
	tables := map[*relation]*policy.Table{}
	for _, t := range p.Tables() {
		// A partitioned table holds no rows itself: its partitions are
		// purged, each under its own name.
		if t.Partitioned {
			continue
		}
		if t.OID == 0 {
			if len(opts.Tables) == 0 {
				missing = append(missing, &Result{Table: policy.RelName{Schema: t.Schema, Name: t.Name}, Retention: t.Retention,
					Skipped: "the configured table is not in this database"})
			}
			continue
		}
		rel, err := rs.get(ctx, t.OID)
		if err != nil {
			return nil, err
		}
		if len(opts.Tables) > 0 {
			names, err := rs.names(ctx, rel)
			if err != nil {
				return nil, err
			}
			names = append(names, policy.RelName{Schema: t.Root.Schema, Name: t.Root.Name})
			want := false
			for i, n := range opts.Tables {
				for _, have := range names {
					if have.Name == n.Name && (n.Schema == "" || n.Schema == have.Schema) {
						matched[i], want = true, true
					}
				}
			}
			if !want {
				continue
			}
		}
		rels = append(rels, rel)
		tables[rel] = t
	}
	for i, ok := range matched {
		if !ok {
			return nil, fmt.Errorf("--table %s: no soft-delete table of the configuration has that name in this database; tombstone doctor lists them", opts.Tables[i])
		}
	}
	var targets []*target
	for _, rel := range childrenFirst(rels) {
		t := tables[rel]
		r := &Result{Table: rel.name, Retention: t.Retention}
		if opts.OlderThan > 0 {
			r.Retention = opts.OlderThan
		}
		report.Tables = append(report.Tables, r)
		switch {
		case r.Retention == 0:
			r.Skipped = "retention is never: set retention for the table in the configuration, or pass --older-than"
		case !rel.columns[t.DeletedAt]:
			r.Skipped = fmt.Sprintf("the table has no column %q (deleted_at); tombstone doctor says what to fix", t.DeletedAt)
		default:
			r.Cutoff = now.Add(-r.Retention)
			targets = append(targets, &target{rel: rel, deletedAt: t.DeletedAt, result: r})
		}
	}
	report.Tables = append(report.Tables, missing...)
	return targets, nil
}

// names are the names a table answers to: its own and those of the
// partitioned tables it is a partition of.
func (rs *relations) names(ctx context.Context, r *relation) ([]policy.RelName, error) {
	out := []policy.RelName{r.name}
	for _, a := range r.ancestors {
		if a == r.oid {
			continue
		}
		n, err := rs.nameOf(ctx, a)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// unreferenced is the condition that no row references row t of tg.
func (tg *target) unreferenced() string {
	var b strings.Builder
	for _, ref := range tg.rel.refs {
		fmt.Fprintf(&b, " AND NOT EXISTS (SELECT FROM %s WHERE %s)", ref.from("c"), ref.referencing("c", "t"))
	}
	return b.String()
}

// purgeTable runs batches on one table until none is left to take, and
// returns how many rows it removed.
func purgeTable(ctx context.Context, begin func(context.Context) (pgx.Tx, error), tg *target, audit policy.RelName, opts Options) (int64, error) {
	name := qualified(tg.rel.name)
	deletedAt := "t." + quote(tg.deletedAt)
	lock := fmt.Sprintf(`SELECT t.ctid FROM ONLY %s AS t WHERE %s OPERATOR(pg_catalog.<) $1%s ORDER BY %s LIMIT $2 FOR UPDATE OF t SKIP LOCKED`,
		name, deletedAt, tg.unreferenced(), deletedAt)
	// The same conditions again, read after the locks: a reference
	// committed since the first statement's snapshot is seen here.
	remove := fmt.Sprintf(`DELETE FROM ONLY %s AS t WHERE t.ctid OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.tid[]) AND %s OPERATOR(pg_catalog.<) $1%s`,
		name, deletedAt, tg.unreferenced())
	var auditArgs []any
	if audit != (policy.RelName{}) {
		remove = audited(remove+" RETURNING "+keyJSON(tg.rel, "t")+" AS key, "+deletedAt+"::pg_catalog.timestamptz AS deletion", audit, 3)
		auditArgs = auditValues(tg.rel, opts.Actor, opts.Reason)
	}
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, interrupted(err, tg)
		}
		tx, err := begin(ctx)
		if err != nil {
			return total, fmt.Errorf("purge %s: begin: %w", tg.rel.name, err)
		}
		n, err := batch(ctx, tx, lock, remove, tg.result.Cutoff, opts.Batch, auditArgs)
		if err != nil {
			tx.Rollback(context.Background())
			if ctx.Err() != nil {
				return total, interrupted(ctx.Err(), tg)
			}
			return total, fmt.Errorf("purge %s (the batch under way was rolled back; the %d before it are committed): %w", tg.rel.name, tg.result.Batches, err)
		}
		if n < 0 {
			tx.Rollback(context.Background())
			return total, nil
		}
		if err := tx.Commit(ctx); err != nil {
			if ctx.Err() != nil {
				return total, interrupted(ctx.Err(), tg)
			}
			return total, fmt.Errorf("purge %s: commit: %w", tg.rel.name, err)
		}
		total += n
		tg.result.Removed += n
		tg.result.Batches++
		if opts.Progress != nil {
			opts.Progress(Progress{Table: tg.rel.name, Removed: tg.result.Removed, Batches: tg.result.Batches})
		}
	}
}

// batch locks the rows lock selects and runs remove on them. It returns
// -1 when there was nothing to lock.
func batch(ctx context.Context, tx pgx.Tx, lock, remove string, cutoff time.Time, size int, auditArgs []any) (int64, error) {
	rows, err := tx.Query(ctx, lock, cutoff, size)
	if err != nil {
		return 0, err
	}
	tids, err := pgx.CollectRows(rows, pgx.RowTo[pgtype.TID])
	if err != nil {
		return 0, err
	}
	if len(tids) == 0 {
		return -1, nil
	}
	tag, err := tx.Exec(ctx, remove, append([]any{cutoff, tids}, auditArgs...)...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func interrupted(err error, tg *target) error {
	return fmt.Errorf("stopped while purging %s: %w; every batch before the one under way is committed, run the purge again to go on", tg.rel.name, err)
}

// holds counts the rows past retention that the purge left, and which
// references keep them.
func holds(ctx context.Context, q querier, tg *target) error {
	// The first two counts: every row left, and those nothing references
	// (another transaction had them locked).
	cols := []string{"pg_catalog.count(*)", "pg_catalog.count(*) FILTER (WHERE true" + tg.unreferenced() + ")"}
	for _, ref := range tg.rel.refs {
		cols = append(cols, fmt.Sprintf("pg_catalog.count(*) FILTER (WHERE EXISTS (SELECT FROM %s WHERE %s))", ref.from("c"), ref.referencing("c", "t")))
	}
	sql := fmt.Sprintf("SELECT %s FROM ONLY %s AS t WHERE t.%s OPERATOR(pg_catalog.<) $1",
		strings.Join(cols, ", "), qualified(tg.rel.name), quote(tg.deletedAt))
	counts := make([]int64, len(cols))
	dest := make([]any, len(cols))
	for i := range counts {
		dest[i] = &counts[i]
	}
	if err := q.QueryRow(ctx, sql, tg.result.Cutoff).Scan(dest...); err != nil {
		return fmt.Errorf("count the rows of %s past retention that are left: %w", tg.rel.name, err)
	}
	tg.result.Held = counts[0]
	for i, ref := range tg.rel.refs {
		if n := counts[i+2]; n > 0 {
			tg.result.HeldBy = append(tg.result.HeldBy, Hold{By: "referenced by " + ref.String(), Rows: n})
		}
	}
	if n := counts[1]; n > 0 {
		tg.result.HeldBy = append(tg.result.HeldBy, Hold{By: "locked by another transaction during the purge", Rows: n})
	}
	return nil
}
