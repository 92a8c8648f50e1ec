package readme

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tombstone-proxy/tombstone/internal/buildtest"
)

// command is one "$ ..." line of a console block and the lines the README
// shows after it, up to the next command or the end of the block.
type command struct {
	line int // 1-based line number in README.md
	cmd  string
	want string
}

// consoleCommands extracts the commands of every ```console block.
func consoleCommands(readme string) []command {
	var out []command
	in := false
	for i, l := range strings.Split(readme, "\n") {
		switch {
		case !in && strings.HasPrefix(l, "```console"):
			in = true
		case in && strings.HasPrefix(l, "```"):
			in = false
		case in && strings.HasPrefix(l, "$ "):
			out = append(out, command{line: i + 1, cmd: strings.TrimPrefix(l, "$ ")})
		case in && len(out) > 0:
			c := &out[len(out)-1]
			c.want += l + "\n"
		}
	}
	return out
}

// TestReadmeCommands runs the README's commands that need no server: those
// that start with bin/tombstone (what make build writes, as a new user has
// it after cloning) and name no --dsn. Commands against a database are
// listed in the log as not run. The README's own section "Try a statement
// without a server" must contribute rewrite and check-config commands, so
// the test cannot pass by finding nothing.
func TestReadmeCommands(t *testing.T) {
	root := buildtest.ModuleRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	bin := buildtest.Tombstone(t)
	ran := map[string]int{}
	for _, c := range consoleCommands(string(b)) {
		if !strings.HasPrefix(c.cmd, "bin/tombstone ") || strings.Contains(c.cmd, "--dsn") {
			t.Logf("README.md:%d: not run (needs a server or is not bin/tombstone): %s", c.line, c.cmd)
			continue
		}
		if sub := strings.Fields(c.cmd); len(sub) > 1 {
			ran[sub[1]]++
		}
		// As written, through the shell (the SQL is single-quoted), from
		// the repository's root; only the binary's path is the test's.
		cmd := exec.Command("sh", "-c", bin+strings.TrimPrefix(c.cmd, "bin/tombstone"))
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "NO_COLOR=1")
		out, err := cmd.CombinedOutput()
		if _, exit := err.(*exec.ExitError); err != nil && !exit {
			t.Fatalf("README.md:%d: %s: %v", c.line, c.cmd, err)
		}
		if string(out) != c.want {
			t.Errorf("README.md:%d: %s\nprints:\n%s\nthe README shows:\n%s", c.line, c.cmd, out, c.want)
		}
	}
	if ran["rewrite"] < 2 || ran["check-config"] < 1 {
		t.Errorf("ran %v from README.md's console blocks; want at least two rewrite and one check-config command (the section \"Try a statement without a server\")", ran)
	}
}
