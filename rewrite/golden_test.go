package rewrite

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pg "github.com/pganalyze/pg_query_go/v6"
	"gopkg.in/yaml.v3"

	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files' want fields from the current output")

func TestMain(m *testing.M) { pgtest.Main(m) }

// goldenCase is one entry of rewrite/testdata/*.yaml. Exactly one of Want,
// Error and Unchanged says what Rewrite must do.
type goldenCase struct {
	Name      string `yaml:"name"`
	SQL       string `yaml:"sql"`
	Want      string `yaml:"want,omitempty"`      // expected SQL, compared in canonical form
	Error     string `yaml:"error,omitempty"`     // expected refusal reason
	Code      string `yaml:"code,omitempty"`      // and its SQLSTATE
	Message   string `yaml:"message,omitempty"`   // and its message, exactly
	Unchanged bool   `yaml:"unchanged,omitempty"` // must come back untouched
	// Setup runs before the case in the same transaction when the case is
	// executed against Postgres (rewritten on the soft-delete side).
	Setup string `yaml:"setup,omitempty"`
	// NoExec says why the case cannot run on its own against Postgres.
	NoExec string `yaml:"noexec,omitempty"`
}

type goldenFile struct {
	path   string
	header []byte // the comment lines the file opens with, kept by -update
	cases  []goldenCase
}

func testPolicy(t testing.TB) *policy.Policy {
	t.Helper()
	p, err := policy.New(testSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testSpec reads testdata/tombstone.yaml, written in the configuration
// file's format, into a policy.Spec. rewrite may not import the
// configuration layer (internal/server builds Specs for the program), so
// this is a test-only reading of the keys the policy uses. Names must be
// written as the catalog stores them (lower case, unquoted): this reader
// does not fold.
func testSpec(t testing.TB) policy.Spec {
	t.Helper()
	const path = "testdata/tombstone.yaml"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Mode               policy.Mode `yaml:"mode"`
		PrivilegedRoles    []string    `yaml:"privileged_roles"`
		PrivilegedMemberOf []string    `yaml:"privileged_member_of"`
		Defaults           struct {
			DeletedAt string `yaml:"deleted_at"`
			DeletedBy string `yaml:"deleted_by"`
		} `yaml:"defaults"`
		Tables []struct {
			Name      string `yaml:"name"`
			DeletedAt string `yaml:"deleted_at"`
			DeletedBy string `yaml:"deleted_by"`
			Cascade   []struct {
				Table  string `yaml:"table"`
				Column string `yaml:"column"`
			} `yaml:"cascade"`
		} `yaml:"tables"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	plain := func(name string) string {
		if name != strings.ToLower(name) || strings.ContainsAny(name, `" `) {
			t.Fatalf("%s: write %q as the catalog stores it (lower case, unquoted): this test reader does not fold names", path, name)
		}
		return name
	}
	split := func(name string) (schema, table string) {
		if s, n, ok := strings.Cut(plain(name), "."); ok {
			return s, n
		}
		return "", name
	}
	or := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	spec := policy.Spec{Mode: policy.Mode(or(string(file.Mode), string(policy.ModeEnforce))), PrivilegedRoles: file.PrivilegedRoles, PrivilegedMemberOf: file.PrivilegedMemberOf}
	for _, ft := range file.Tables {
		ts := policy.TableSpec{
			DeletedAt: plain(or(ft.DeletedAt, or(file.Defaults.DeletedAt, "deleted_at"))),
			DeletedBy: plain(or(ft.DeletedBy, file.Defaults.DeletedBy)),
		}
		ts.Schema, ts.Name = split(ft.Name)
		for _, c := range ft.Cascade {
			cs := policy.CascadeSpec{Column: plain(c.Column)}
			cs.Schema, cs.Table = split(c.Table)
			ts.Cascade = append(ts.Cascade, cs)
		}
		spec.Tables = append(spec.Tables, ts)
	}
	return spec
}

func loadGolden(t testing.TB) []goldenFile {
	t.Helper()
	paths, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var files []goldenFile
	for _, p := range paths {
		if filepath.Base(p) == "tombstone.yaml" {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var cases []goldenCase
		if err := yaml.Unmarshal(data, &cases); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for i, c := range cases {
			kinds := 0
			for _, set := range []bool{c.Want != "", c.Error != "", c.Unchanged} {
				if set {
					kinds++
				}
			}
			if c.Name == "" || c.SQL == "" || (kinds != 1 && !*update) {
				t.Fatalf("%s: case %d (%q) needs name, sql and exactly one of want, error, unchanged", p, i, c.Name)
			}
		}
		files = append(files, goldenFile{path: p, header: leadingComments(data), cases: cases})
	}
	if len(files) == 0 {
		t.Fatal("no golden files in testdata")
	}
	return files
}

// canonical is the text's parse -> deparse form, so that golden files may
// be written readably.
func canonical(t testing.TB, sql string) string {
	t.Helper()
	tree, err := pg.Parse(sql)
	if err != nil {
		t.Fatalf("golden SQL does not parse: %v\n%s", err, sql)
	}
	out, err := pg.Deparse(tree)
	if err != nil {
		t.Fatalf("deparse: %v", err)
	}
	return out
}

// outcome runs Rewrite and describes the answer in golden-file terms.
func outcome(r *Rewriter, sql string) (got goldenCase, err error) {
	res, _, ref := r.Rewrite(sql)
	switch {
	case ref != nil:
		return goldenCase{Error: ref.Reason, Code: ref.Code, Message: ref.Message}, nil
	case res == nil || !res.Changed:
		if res != nil && res.SQL != sql {
			return goldenCase{}, errors.New("unchanged result does not carry the original text")
		}
		return goldenCase{Unchanged: true}, nil
	}
	return goldenCase{Want: res.SQL}, nil
}

func TestGolden(t *testing.T) {
	r := New(testPolicy(t), 1<<20)
	// The first text of a shape gets the exact path's answer, the second
	// the template's (compiled then); rewriting a copy with other literals
	// first makes each golden text with literals answered by the template,
	// so the spliced output is what is compared.
	for _, f := range loadGolden(t) {
		for _, c := range f.cases {
			if o := otherLiterals(c.SQL); o != "" {
				_, _, _ = r.Rewrite(o)
			}
		}
	}
	for _, f := range loadGolden(t) {
		actual := make([]goldenCase, len(f.cases))
		failed := false
		for i, c := range f.cases {
			got, err := outcome(r, c.SQL)
			if err != nil {
				t.Errorf("%s/%s: %v", f.path, c.Name, err)
				failed = true
				continue
			}
			a := c
			a.Want, a.Error, a.Code, a.Message, a.Unchanged = got.Want, got.Error, got.Code, got.Message, got.Unchanged
			actual[i] = a
			if *update {
				continue
			}
			ok := got.Error == c.Error && got.Code == c.Code && got.Message == c.Message && got.Unchanged == c.Unchanged &&
				(got.Want == "" && c.Want == "" || got.Want != "" && c.Want != "" && canonical(t, got.Want) == canonical(t, c.Want))
			if !ok {
				failed = true
				t.Errorf("%s/%s:\n sql:  %s\n want: %s\n got:  %s", f.path, c.Name, c.SQL, describe(c), describe(got))
			}
		}
		out, err := yaml.Marshal(actual)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case *update:
			if err := os.WriteFile(f.path, append(f.header, out...), 0o644); err != nil {
				t.Fatal(err)
			}
		case failed:
			if err := os.WriteFile(f.path+".actual", out, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s.actual; diff it against %s", f.path, f.path)
		default:
			_ = os.Remove(f.path + ".actual")
		}
	}
}

// leadingComments is the run of "#" lines data starts with.
func leadingComments(data []byte) []byte {
	n := 0
	for n < len(data) && data[n] == '#' {
		end := bytes.IndexByte(data[n:], '\n')
		if end < 0 {
			return data
		}
		n += end + 1
	}
	return data[:n]
}

func describe(c goldenCase) string {
	switch {
	case c.Error != "":
		return "refusal " + c.Error + " " + c.Code + ": " + c.Message
	case c.Unchanged:
		return "unchanged"
	}
	return strings.TrimSpace(c.Want)
}
