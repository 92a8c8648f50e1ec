package deploy_test

import (
	"strings"
	"testing"

	"github.com/tombstone-proxy/tombstone/deploy"
	"github.com/tombstone-proxy/tombstone/internal/config"
)

func TestOverride(t *testing.T) {
	in := []byte("# comment kept\nlisten: 0.0.0.0:6432\ntables:\n  - name: t\n")
	out, err := deploy.Override(in, map[string]string{"listen": "127.0.0.1:1", "metrics.listen": "127.0.0.1:2"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := config.Parse(out, "override")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if f.Listen != "127.0.0.1:1" || f.Metrics.Listen != "127.0.0.1:2" || len(f.Tables) != 1 || f.Tables[0].Name != "t" {
		t.Errorf("Override gave listen %q, metrics.listen %q, tables %v:\n%s", f.Listen, f.Metrics.Listen, f.Tables, out)
	}
	if !strings.Contains(string(out), "# comment kept") {
		t.Errorf("Override dropped the comment:\n%s", out)
	}
	if _, err := deploy.Override(in, map[string]string{"tables": "x"}); err == nil || !strings.Contains(err.Error(), "tables") {
		t.Errorf("Override of a list with a scalar: err = %v, want an error naming tables", err)
	}
}
