package deploy

import (
	_ "embed"
	"fmt"
	"maps"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// DemoSQL creates the demo role "app" (password "app") and the demo schema
// with data, in the current database. Docker compose runs the same file
// from /docker-entrypoint-initdb.d.
//
//go:embed compose/initdb/demo.sql
var DemoSQL string

// DemoConfig is the Tombstone configuration of the compose demo. Its
// addresses are container names; Override them to run it elsewhere.
//
//go:embed compose/tombstone.yaml
var DemoConfig []byte

// Override returns the YAML configuration cfg with the scalar values at the
// given dotted keys (e.g. "metrics.listen") replaced or added, keeping
// everything else, comments included. It lets one example configuration
// serve a container, `make demo` and tests, each with its own addresses.
func Override(cfg []byte, values map[string]string) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(cfg, &doc); err != nil {
		return nil, fmt.Errorf("parse configuration to override: %w", err)
	}
	if len(doc.Content) == 0 {
		doc.Kind = yaml.DocumentNode
		doc.Content = []*yaml.Node{{Kind: yaml.MappingNode}}
	}
	// Sorted, so keys that are added come out in the same order every time.
	for _, key := range slices.Sorted(maps.Keys(values)) {
		if err := set(doc.Content[0], strings.Split(key, "."), values[key]); err != nil {
			return nil, fmt.Errorf("override %s: %w", key, err)
		}
	}
	return yaml.Marshal(&doc)
}

func set(m *yaml.Node, path []string, value string) error {
	if m.Kind != yaml.MappingNode {
		return fmt.Errorf("%q is inside a %s, not a mapping", path[0], kindName(m.Kind))
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != path[0] {
			continue
		}
		v := m.Content[i+1]
		if len(path) > 1 {
			return set(v, path[1:], value)
		}
		if v.Kind != yaml.ScalarNode {
			return fmt.Errorf("%q holds a %s, not a single value", path[0], kindName(v.Kind))
		}
		v.SetString(value)
		return nil
	}
	k := &yaml.Node{Kind: yaml.ScalarNode, Value: path[0]}
	if len(path) == 1 {
		v := &yaml.Node{}
		v.SetString(value)
		m.Content = append(m.Content, k, v)
		return nil
	}
	v := &yaml.Node{Kind: yaml.MappingNode}
	m.Content = append(m.Content, k, v)
	return set(v, path[1:], value)
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.SequenceNode:
		return "list"
	case yaml.MappingNode:
		return "mapping"
	case yaml.ScalarNode:
		return "scalar"
	default:
		return "node"
	}
}
