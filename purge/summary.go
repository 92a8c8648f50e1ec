package purge

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteSummary prints the report for a person: one line per table, then
// why rows past retention were kept.
func (r *Report) WriteSummary(w io.Writer) {
	verb := "removed"
	if r.DryRun {
		verb = "would be removed"
	}
	fmt.Fprintf(w, "%s %s from %s", count(r.Removed(), "row"), verb, count(int64(len(r.Tables)), "table"))
	if r.DryRun {
		fmt.Fprint(w, " (dry run: nothing was removed)")
	}
	fmt.Fprintln(w)
	width := 0
	for _, t := range r.Tables {
		width = max(width, len(t.Table.String()))
	}
	for _, t := range r.Tables {
		if t.Skipped != "" {
			fmt.Fprintf(w, "  %-*s  skipped: %s\n", width, t.Table, t.Skipped)
			continue
		}
		fmt.Fprintf(w, "  %-*s  %s in %s (retention %s: deleted before %s)", width, t.Table, count(t.Removed, "row"), count(int64(t.Batches), "batch"), period(t.Retention), t.Cutoff.UTC().Format(time.RFC3339))
		if t.Held > 0 {
			holds := make([]string, len(t.HeldBy))
			for i, h := range t.HeldBy {
				holds[i] = fmt.Sprintf("%d %s", h.Rows, h.By)
			}
			fmt.Fprintf(w, "; %s past retention kept: %s", count(t.Held, "row"), strings.Join(holds, "; "))
		}
		fmt.Fprintln(w)
	}
}

// WriteSummary prints the erasure's counts for a person.
func (r *ErasureReport) WriteSummary(w io.Writer) {
	verb := "erased"
	if r.DryRun {
		verb = "would be erased"
	}
	fmt.Fprintf(w, "%s %s in one transaction", count(r.Rows(), "row"), verb)
	if r.DryRun {
		fmt.Fprint(w, " (dry run: nothing was removed)")
	}
	fmt.Fprintln(w)
	for _, c := range r.Removed {
		fmt.Fprintf(w, "  %s: %s\n", c.Table, count(c.Rows, "row"))
	}
	for _, c := range r.Unlinked {
		fmt.Fprintf(w, "  %s: %s kept, their reference changed by %s\n", c.Table, count(c.Rows, "row"), c.Via)
	}
}

// period writes a retention as the configuration does: in days when whole.
func period(d time.Duration) string {
	const day = 24 * time.Hour
	if d%day == 0 {
		return fmt.Sprintf("%dd", d/day)
	}
	return d.String()
}

// count writes n things: "1 row", "2 rows", "3 batches".
func count(n int64, thing string) string {
	switch {
	case n == 1:
		return "1 " + thing
	case strings.HasSuffix(thing, "h"):
		return fmt.Sprintf("%d %ses", n, thing)
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
