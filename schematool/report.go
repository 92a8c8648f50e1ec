package schematool

import (
	"fmt"
	"io"
)

// Write prints the report: one section per table, one line per finding,
// each followed by what migrate does about it; then a summary line.
func (r *Report) Write(w io.Writer) {
	for _, s := range r.Sections {
		fmt.Fprintln(w, s.Title)
		for _, f := range s.Findings {
			fmt.Fprintf(w, "  %-4s  %s: %s\n", f.Level, f.Topic, f.Message)
			if f.Fix != "" && f.Level != OK {
				fmt.Fprintf(w, "        -> %s\n", f.Fix)
			}
		}
	}
	fmt.Fprintf(w, "%d problem(s), %d warning(s), %d note(s)\n", r.Count(Fail), r.Count(Warn), r.Count(Note))
}
