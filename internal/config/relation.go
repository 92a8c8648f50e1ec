package config

import "fmt"

// ParseRelation folds a table name written on a command line ("table" or
// "schema.table") as the configuration folds one, so that a flag names
// the same table the file would. schema is "" when v has none.
func ParseRelation(v string) (schema, name string, err error) {
	parts, err := foldName(v)
	switch {
	case err != nil:
		return "", "", err
	case len(parts) > 2:
		return "", "", fmt.Errorf("%q is not table or schema.table: it has %d dot-separated parts (quote a name with a dot in it: '\"a.b\"')", v, len(parts))
	case len(parts) == 2:
		return parts[0], parts[1], nil
	}
	return "", parts[0], nil
}
