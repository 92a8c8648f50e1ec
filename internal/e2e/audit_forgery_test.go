package e2e

// Ways the application role tried to forge audit rows through the proxy
// (found by an adversarial review of issue 11); each must be refused.

import (
	"testing"
)

// forgedAuditRows counts audit rows whose actor is the forger's marker.
func (e *schemaEnv) forgedAuditRows(t *testing.T) int64 {
	t.Helper()
	return scalar[int64](t, e.super, `SELECT count(*) FROM tombstone.audit_log WHERE actor = 'forged-by-app'`)
}

// MERGE ... WHEN NOT MATCHED THEN INSERT writes the audit log as the
// application: PUBLIC's INSERT grant accepts it, and the rewriter checked
// only INSERT and COPY. The forged row claims a deletion of customer 5
// that never happened, indistinguishable from a real one (same login).
func TestAdversarialMergeForgesAuditRow(t *testing.T) {
	e := newAuditEnv(t)
	o := execute(e.ctx, e.app, simple(`MERGE INTO tombstone.audit_log AS a USING (SELECT 1) AS s ON false
	  WHEN NOT MATCHED THEN INSERT (action, table_name, key, actor, reason, deletion)
	  VALUES ('delete', 'public.customers', '{"id": 5}', 'forged-by-app', 'gdpr', now())`))
	if n := e.forgedAuditRows(t); n != 0 || o.err == nil {
		t.Errorf("MERGE INTO the audit log through Tombstone: err %v, %d forged audit rows; want a 42501 refusal and none", o.err, n)
	}
}

// A temporary view over the audit log is automatically updatable; an
// INSERT into it reaches the audit log with the view owner's (the
// application's) INSERT grant. Neither statement names the audit log as
// an INSERT target, so both passed the rewriter before every reference was refused.
func TestAdversarialTempViewForgesAuditRow(t *testing.T) {
	e := newAuditEnv(t)
	o1 := execute(e.ctx, e.app, simple(`CREATE TEMP VIEW review_v AS SELECT action, table_name, key, actor, reason, fingerprint, deletion FROM tombstone.audit_log`))
	o2 := execute(e.ctx, e.app, simple(`INSERT INTO review_v (action, table_name, key, actor, deletion) VALUES ('delete', 'public.customers', '{"id": 6}', 'forged-by-app', now())`))
	if n := e.forgedAuditRows(t); n != 0 {
		t.Errorf("a view over the audit log: CREATE VIEW err %v, INSERT err %v; %d forged audit rows, want a refusal and none", o1.err, o2.err, n)
	}
}

// The same through a view in a schema the application may create in
// (many applications own their schema): a plain CREATE VIEW.
func TestAdversarialPlainViewForgesAuditRow(t *testing.T) {
	e := newAuditEnv(t)
	if _, err := e.super.Exec(e.ctx, "GRANT CREATE ON SCHEMA public TO "+appUser); err != nil {
		t.Fatal(err)
	}
	o1 := execute(e.ctx, e.app, simple(`CREATE VIEW public.review_v2 AS SELECT * FROM tombstone.audit_log`))
	o2 := execute(e.ctx, e.app, simple(`INSERT INTO public.review_v2 (action, table_name, key, actor, deletion) VALUES ('restore', 'public.customers', '{"id": 6}', 'forged-by-app', now())`))
	if n := e.forgedAuditRows(t); n != 0 {
		t.Errorf("a view over the audit log: CREATE VIEW err %v, INSERT err %v; %d forged audit rows, want a refusal and none", o1.err, o2.err, n)
	}
}
