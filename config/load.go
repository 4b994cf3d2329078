package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"
)

// Loader loads gearman.yml with non-default settings; the zero value is what
// Load and Parse use.
type Loader struct {
	// LookupEnv resolves ${VAR}; nil means os.LookupEnv. Tests set it to
	// avoid touching the process environment.
	LookupEnv func(name string) (string, bool)
}

// Load reads the gearman.yml at path and returns the view of environment env:
// the `all:` section deep-merged with the env section, as symfony does. An
// empty env (or "all") means `all:` only; an env without a section in the
// file also gets `all:` only, as in symfony. A missing or unreadable file
// returns the os error wrapped; bad content returns an *Error.
func Load(path, env string) (*Config, error) { return Loader{}.Load(path, env) }

// Parse is Load for content already in memory; file is used only in messages.
func Parse(file string, data []byte, env string) (*Config, error) {
	return Loader{}.Parse(file, data, env)
}

// Load is the package Load with l's settings.
func (l Loader) Load(path, env string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return l.Parse(path, data, env)
}

// Parse is the package Parse with l's settings.
func (l Loader) Parse(file string, data []byte, env string) (*Config, error) {
	lookup := l.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	d := &decoder{file: file, key: map[*yaml.Node]string{}, lookup: lookup, dbSets: map[string]*yaml.Node{}}
	if env == "all" {
		env = ""
	}
	c, err := d.parse(data, env)
	if err != nil {
		return nil, d.located(err)
	}
	c.File, c.Env = file, env
	return c, nil
}

func (d *decoder) parse(data []byte, env string) (*Config, error) {
	root, err := d.parseYAML(data)
	if err != nil {
		return nil, err
	}
	merged, err := d.selectEnv(root, env)
	if err != nil {
		return nil, err
	}
	if err := d.expandTree(merged); err != nil {
		return nil, err
	}
	return d.config(merged)
}

// decoder turns the yaml.Node tree into a Config, reporting errors with the
// file, line and key path.
type decoder struct {
	file string
	// key is the key path of each node of the tree, from the top-level
	// section it was written in ("all" or the env), so that an error names
	// the place the user has to edit even after the env section was merged
	// over `all:`; where located places an error.
	key    map[*yaml.Node]string
	lookup func(string) (string, bool)
	nodes  int // nodes built by normalize, to bound alias expansion

	c         *Config
	dbSets    map[string]*yaml.Node // set name -> its key, across doctrine: and dbworker:
	notes     []Note
	namingSet bool // naming: written in the file
}

// failAt is fail at a node of the parsed file, whose key path is key.
func (d *decoder) failAt(n *yaml.Node, key, format string, args ...any) error {
	d.key[n] = key
	return fail(n, format, args...)
}

// located turns a nodeError into an *Error at its node's line and key path;
// other errors are returned as they are.
func (d *decoder) located(err error) error {
	var ne *nodeError
	if !errors.As(err, &ne) {
		return err
	}
	return &Error{File: d.file, Line: ne.n.Line, Key: d.key[ne.n], Msg: ne.msg, Err: ne.err}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// yamlLine pulls the line out of a yaml.v3 error, which has no typed form.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML returns the document's root node with aliases resolved, merge
// keys (<<) applied and duplicate keys rejected; nil for an empty file.
func (d *decoder) parseYAML(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		e := &Error{File: d.file, Msg: err.Error(), Err: err}
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Msg = m[2]
			// yaml.v3 names the line of the block an indentation error
			// breaks, not the line that breaks it: name the first line
			// without which the file still parses.
			if bad := firstBadLine(data); bad > e.Line {
				e.Msg = fmt.Sprintf("%s (a line indented unlike its neighbours? the block starts at line %d)", e.Msg, e.Line)
				e.Line = bad
			}
		}
		return nil, e
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &Error{File: d.file, Line: extra.Line, Msg: "more than one YAML document"}
	}
	return d.normalize(&doc, "")
}

// firstBadLine returns the number of the first line at which the file's
// prefix stops parsing as YAML, or 0.
func firstBadLine(data []byte) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	for n := 1; n <= len(lines); n++ {
		var v yaml.Node
		if yaml.Unmarshal(bytes.Join(lines[:n], nil), &v) != nil {
			return n
		}
	}
	return 0
}

// maxNodes bounds the tree after alias expansion (billion laughs).
const maxNodes = 100000

// normalize returns a copy of n in which aliases are replaced by copies of
// their targets and merge keys are applied, so that every node of the result
// is distinct (each has its key path) and plain.
func (d *decoder) normalize(n *yaml.Node, path string) (*yaml.Node, error) {
	if d.nodes++; d.nodes > maxNodes {
		return nil, d.failAt(n, path, "too many nodes after alias expansion")
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return d.normalize(n.Content[0], path)
	case yaml.AliasNode:
		return d.normalize(n.Alias, path)
	case yaml.SequenceNode:
		out := d.shallow(n, path)
		for i, c := range n.Content {
			nc, err := d.normalize(c, index(path, i))
			if err != nil {
				return nil, err
			}
			out.Content = append(out.Content, nc)
		}
		return out, nil
	case yaml.MappingNode:
		return d.normalizeMap(n, path)
	}
	return d.shallow(n, path), nil
}

func (d *decoder) normalizeMap(n *yaml.Node, path string) (*yaml.Node, error) {
	out := d.shallow(n, path)
	seen := map[string]*yaml.Node{}
	var sources []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			sources = append(sources, v)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			return nil, d.failAt(k, path, "a key must be a plain string")
		}
		kp := join(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			return nil, d.failAt(k, kp, "duplicate key (first at line %d)", first.Line)
		}
		seen[k.Value] = k
		nv, err := d.normalize(v, kp)
		if err != nil {
			return nil, err
		}
		out.Content = append(out.Content, d.shallow(k, kp), nv)
	}
	// Merge keys: explicit keys win, then earlier sources over later ones.
	for _, src := range sources {
		items := []*yaml.Node{src}
		if src.Kind == yaml.SequenceNode {
			items = src.Content
		}
		for _, it := range items {
			m, err := d.normalize(it, path)
			if err != nil {
				return nil, err
			}
			if m == nil || m.Kind != yaml.MappingNode {
				return nil, d.failAt(src, join(path, "<<"), "want a mapping to merge, got %s", describe(m))
			}
			for j := 0; j+1 < len(m.Content); j += 2 {
				if _, ok := seen[m.Content[j].Value]; !ok {
					seen[m.Content[j].Value] = m.Content[j]
					out.Content = append(out.Content, m.Content[j], m.Content[j+1])
				}
			}
		}
	}
	return out, nil
}

// shallow copies n without its content, at key path key.
func (d *decoder) shallow(n *yaml.Node, key string) *yaml.Node {
	c := *n
	c.Content, c.Anchor, c.Alias = nil, "", nil
	d.key[&c] = key
	return &c
}

// selectEnv checks the top level and returns `all:` merged with env's section.
func (d *decoder) selectEnv(root *yaml.Node, env string) (*yaml.Node, error) {
	if root == nil || isNull(root) {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, d.failAt(root, "", "want a mapping of environments (all:, prod:, ...), got %s", describe(root))
	}
	var base, over *yaml.Node
	for _, p := range pairs(root) {
		name := p.k.Value
		if isSection(name) {
			return nil, fail(p.k, "section must be under all: or an environment (prod:, dev:, ...)")
		}
		if name != "all" && (env == "" || name != env) {
			continue // other environments are not this process's business
		}
		if isNull(p.v) {
			continue // `prod:` with nothing under it overrides nothing
		}
		if p.v.Kind != yaml.MappingNode {
			return nil, fail(p.v, "want a mapping of sections, got %s", describe(p.v))
		}
		if name == "all" {
			base = p.v
		} else {
			over = p.v
		}
	}
	return d.merge(base, over), nil
}

// merge deep-merges over onto base as symfony's sfToolkit::arrayDeepMerge,
// except that lists replace rather than merge index by index: mappings merge
// key by key, anything else from over replaces; so a ~ in the env section
// clears what all: set there.
func (d *decoder) merge(base, over *yaml.Node) *yaml.Node {
	if over == nil {
		return base
	}
	if base == nil {
		return over
	}
	if base.Kind != yaml.MappingNode || over.Kind != yaml.MappingNode {
		return over
	}
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: over.Line, Column: over.Column}
	d.key[out] = d.key[over]
	at := map[string]int{}
	for _, p := range pairs(base) {
		at[p.k.Value] = len(out.Content)
		out.Content = append(out.Content, p.k, p.v)
	}
	for _, p := range pairs(over) {
		if i, ok := at[p.k.Value]; ok {
			out.Content[i] = p.k
			out.Content[i+1] = d.merge(out.Content[i+1], p.v)
			continue
		}
		out.Content = append(out.Content, p.k, p.v)
	}
	return out
}

// expandTree applies ${VAR} expansion to every scalar value (not keys).
func (d *decoder) expandTree(n *yaml.Node) error {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.ScalarNode {
		v, err := expand(n.Value, d.lookup)
		n.Value = v
		if err != nil {
			return fail(n, "%v", err)
		}
	}
	for i, c := range n.Content {
		if n.Kind == yaml.MappingNode && i%2 == 0 {
			continue // a key
		}
		if err := d.expandTree(c); err != nil {
			return err
		}
	}
	return nil
}

type pair struct{ k, v *yaml.Node }

func pairs(n *yaml.Node) []pair {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	ps := make([]pair, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		ps = append(ps, pair{n.Content[i], n.Content[i+1]})
	}
	return ps
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what a node is, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	switch {
	case isNull(n):
		return "~ (null)"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return fmt.Sprintf("a list of %d", len(n.Content))
	}
	switch n.ShortTag() {
	case "!!int", "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	}
	return "a string"
}
