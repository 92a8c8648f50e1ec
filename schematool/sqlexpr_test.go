package schematool

import "testing"

func TestRequiresLive(t *testing.T) {
	for _, c := range []struct {
		pred string
		want bool
	}{
		{"(deleted_at IS NULL)", true},
		{"((a > 0) AND (deleted_at IS NULL))", true},
		{`("Deleted_At" IS NULL)`, false},
		{"(deleted_at IS NOT NULL)", false},
		{"((a > 0) OR (deleted_at IS NULL))", false},
		{"(x.deleted_at IS NULL)", false},
		{"((note = 'AND (deleted_at IS NULL)'::text))", false},
		{"", false},
	} {
		if got := requiresLive(c.pred, "deleted_at"); got != c.want {
			t.Errorf("requiresLive(%q) = %v, want %v", c.pred, got, c.want)
		}
	}
	if !requiresLive(`("Deleted_At" IS NULL)`, "Deleted_At") {
		t.Error("a quoted column name is not matched")
	}
}

func TestMentions(t *testing.T) {
	for _, c := range []struct {
		expr string
		want bool
	}{
		{"(deleted_at IS NULL)", true},
		{"(DELETED_AT IS NULL)", true},
		{"(tenant = current_setting('deleted_at'::text))", false},
		{`("deleted_at" > now())`, true},
		{"(owner = CURRENT_USER)", false},
		{"(note = 'deleted_at'::text)", false},
		{"", false},
	} {
		if got := mentions(c.expr, "deleted_at"); got != c.want {
			t.Errorf("mentions(%q) = %v, want %v", c.expr, got, c.want)
		}
	}
}

func TestMentionsClock(t *testing.T) {
	clock := []string{"statement_timestamp", "now", "current_timestamp"}
	if !mentions("((deleted_at IS NULL) OR (deleted_at >= statement_timestamp()))", clock...) ||
		!mentions("(deleted_at > CURRENT_TIMESTAMP)", clock...) || mentions("(deleted_at IS NULL)", clock...) {
		t.Error("the clock is not recognized")
	}
}

func TestPartialForms(t *testing.T) {
	got, err := partialIndex("CREATE UNIQUE INDEX t_a_key ON public.t USING btree (lower(a)) INCLUDE (b) WHERE (b > 0)", "t_a_key_tombstone", "deleted_at", "fast", true)
	want := "CREATE UNIQUE INDEX CONCURRENTLY t_a_key_tombstone ON public.t USING btree (lower(a)) INCLUDE (b) TABLESPACE fast WHERE b > 0 AND deleted_at IS NULL"
	if err != nil || got != want {
		t.Errorf("partialIndex:\n got %s (%v)\nwant %s", got, err, want)
	}
	got, err = partialExclusion("public.t", "EXCLUDE USING gist (during WITH &&) DEFERRABLE", "t_excl_tombstone", "deleted_at")
	want = "ALTER TABLE public.t ADD CONSTRAINT t_excl_tombstone EXCLUDE USING gist (during WITH &&) WHERE (deleted_at IS NULL) DEFERRABLE"
	if err != nil || got != want {
		t.Errorf("partialExclusion:\n got %s (%v)\nwant %s", got, err, want)
	}
	got, err = partialIndex("CREATE UNIQUE INDEX t_b_key ON public.t USING btree (b, deleted_at)", "t_b_key_tombstone", "deleted_at", "", true)
	want = "CREATE UNIQUE INDEX CONCURRENTLY t_b_key_tombstone ON public.t USING btree (b) WHERE deleted_at IS NULL"
	if err != nil || got != want {
		t.Errorf("partialIndex without the deleted_at column:\n got %s (%v)\nwant %s", got, err, want)
	}
	if _, err := partialIndex("CREATE INDEX t_d ON public.t USING btree (deleted_at)", "x", "deleted_at", "", true); err == nil {
		t.Error("partialIndex built an index without columns")
	}
	got, err = partialIndex("CREATE INDEX e_at ON ONLY public.e USING btree (at)", "e_at_tombstone", "deleted_at", "", false)
	want = "CREATE INDEX e_at_tombstone ON ONLY public.e USING btree (at) WHERE deleted_at IS NULL"
	if err != nil || got != want {
		t.Errorf("partialIndex of a partitioned index:\n got %s (%v)\nwant %s", got, err, want)
	}
	if _, err := partialIndex("ALTER TABLE t ADD c int", "x", "deleted_at", "", true); err == nil {
		t.Error("partialIndex accepted a statement that is not CREATE INDEX")
	}
}
