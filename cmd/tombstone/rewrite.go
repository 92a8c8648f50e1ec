package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/tombstone-proxy/tombstone/internal/server"
	"github.com/tombstone-proxy/tombstone/policy"
	"github.com/tombstone-proxy/tombstone/rewrite"
)

// dryRun prints what the proxy would send upstream for one SQL text under
// the configuration's policy, without connecting anywhere.
func dryRun(std stdio, args []string) error {
	fs := newFlags("rewrite", `rewrite --config FILE [--role ROLE] SQL

Shows what the proxy does with SQL, without connecting anywhere: the
rewritten text, "unchanged", or the refusal with its SQLSTATE.
SQL "-" reads the statement from standard input.`, std)
	path := configFlag(fs)
	role := fs.String("role", "", "login `ROLE` of the session (privileged roles are bypassed)")
	if err := parse(fs, args, 1); err != nil {
		return err
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	sql := fs.Arg(0)
	if sql == "-" {
		b, err := io.ReadAll(std.in)
		if err != nil {
			return fmt.Errorf("read standard input: %w", err)
		}
		sql = string(b)
	}
	p, err := server.NewPolicy(cfg)
	if err != nil {
		return &configError{err}
	}
	if *role != "" && p.PrivilegedByName(*role) {
		fmt.Fprintf(std.out, "bypassed: role %q is in privileged_roles; the statement is sent unchanged\n", *role)
		return nil
	}
	res, _, refusal := rewrite.New(p, int64(cfg.RewriteCacheSize)).Rewrite(sql)
	switch {
	case refusal != nil:
		fmt.Fprintf(std.out, "refused: SQLSTATE %s: %s\n", refusal.Code, refusal.Message)
		for _, l := range []struct{ label, text string }{{"DETAIL", refusal.Detail}, {"HINT", refusal.Hint}} {
			if l.text != "" {
				fmt.Fprintf(std.out, "%s: %s\n", l.label, l.text)
			}
		}
	case res == nil:
		fmt.Fprintln(std.out, "unchanged: the statement names no soft-delete table")
	case !res.Changed:
		fmt.Fprintln(std.out, "unchanged")
	default:
		fmt.Fprintln(std.out, res.SQL)
		for _, a := range res.Applied {
			fmt.Fprintf(std.out, "-- applied: %s on %s\n", a.Kind, a.Table.QualifiedName())
		}
		for _, st := range res.Statements {
			if st.DeleteTag {
				fmt.Fprintln(std.out, "-- the client sees the command tag DELETE n, not UPDATE n")
				break
			}
		}
	}
	notes(std.out, p, *role, refusal != nil || (res != nil && res.Changed))
	return nil
}

// notes says where the dry run differs from what the proxy would do with
// a statement it would rewrite or refuse.
func notes(w io.Writer, p *policy.Policy, role string, affected bool) {
	if !affected {
		return
	}
	if p.Mode() == policy.ModeShadow {
		fmt.Fprintln(w, "-- note: mode is shadow: the proxy sends the statement unchanged and only logs and counts the above")
	}
	if m := p.PrivilegedMemberOf(); len(m) > 0 && role != "" {
		fmt.Fprintf(w, "-- note: role %q is privileged if it is a member of %s; that is resolved at login and not checked here\n", role, strings.Join(m, ", "))
	}
}
