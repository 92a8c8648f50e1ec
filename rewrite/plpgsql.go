package rewrite

import pg "github.com/pganalyze/pg_query_go/v6"

// proceduralBody refuses a DO block or a function or procedure whose body
// text may name a configured table (or hold anything else the prefilter
// looks for, such as EXECUTE): the statements inside run on the server,
// where Tombstone cannot filter or soften them.
func (e *engine) proceduralBody(what string, options []*pg.Node) error {
	for _, o := range options {
		d := o.GetDefElem()
		if d == nil || d.Defname != "as" {
			continue
		}
		parts := []*pg.Node{d.Arg}
		if l := d.Arg.GetList(); l != nil {
			parts = l.Items // CREATE FUNCTION ... AS 'body' or AS 'obj_file', 'symbol'
		}
		for _, part := range parts {
			if e.filter.mayMatch(part.GetString_().GetSval()) {
				return unseen(what+" may touch a soft-delete table: Tombstone cannot see into procedural code",
					"A DELETE inside it would remove rows for good and its reads would see deleted rows.",
					"Run it as a privileged role.")
			}
		}
	}
	return nil
}
