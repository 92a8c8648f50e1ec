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
	fmt.Fprintf(w, "%d rows %s from %d tables", r.Removed(), verb, len(r.Tables))
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
		fmt.Fprintf(w, "  %-*s  %d rows in %d batches (retention %s: deleted before %s)", width, t.Table, t.Removed, t.Batches, period(t.Retention), t.Cutoff.UTC().Format(time.RFC3339))
		if t.Held > 0 {
			holds := make([]string, len(t.HeldBy))
			for i, h := range t.HeldBy {
				holds[i] = fmt.Sprintf("%d %s", h.Rows, h.By)
			}
			fmt.Fprintf(w, "; %d rows past retention kept: %s", t.Held, strings.Join(holds, "; "))
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
	fmt.Fprintf(w, "%d rows %s in one transaction", r.Rows(), verb)
	if r.DryRun {
		fmt.Fprint(w, " (dry run: nothing was removed)")
	}
	fmt.Fprintln(w)
	for _, c := range r.Removed {
		fmt.Fprintf(w, "  %s: %d rows\n", c.Table, c.Rows)
	}
	for _, c := range r.Unlinked {
		fmt.Fprintf(w, "  %s: %d rows kept, their reference changed by %s\n", c.Table, c.Rows, c.Via)
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
