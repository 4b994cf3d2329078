package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Naming says how gearman function names are built.
const (
	// NamingRowgear (default): `namespace` prefixes row-event and job
	// functions (rowgear.Article.update); plain functions and queues keep
	// their names.
	NamingRowgear = "rowgear"
	// NamingPlugin: sfGearmanPlugin's names. `namespace` is a suffix of
	// every function, plain ones and queues included (reverse@shop,
	// queue.q1@shop), and record and table jobs are <Model>.<job>@shop, so
	// Go and PHP workers serve the same functions during a migration. Row
	// events keep rowgear's names under DefaultNamespace: they come from
	// rowgear's triggers or bridge, never from the plugin.
	NamingPlugin = "plugin"
)

// Serializer says which codec (gearman.JSON or gearman.PHP, by Name)
// carries the workloads and results of which functions; see SerializerFor.
type Serializer struct {
	Default  string            // every function not named below; default json
	Server   map[string]string // by connection name (server:)
	Set      map[string]string // by worker or dbworker set name
	Function map[string]string // by function name, without the @namespace suffix
}

// SerializerFor returns the codec name of function, called through
// connection server by set (either may be empty): the most specific of
// function, set, server and default. The function is looked up without
// FunctionSuffix.
func (c *Config) SerializerFor(server, set, function string) string {
	s := c.Serializer
	if v, ok := s.Function[strings.TrimSuffix(function, c.FunctionSuffix)]; ok {
		return v
	}
	if v, ok := s.Set[set]; ok && set != "" {
		return v
	}
	if server == "" {
		server = "default"
	}
	if v, ok := s.Server[server]; ok {
		return v
	}
	if s.Default == "" {
		return "json"
	}
	return s.Default
}

// JobFunction is the gearman function of a record or table job: with
// NamingPlugin <Model>.<job><FunctionSuffix>, else
// <Namespace>.<Model>.<job>.
func (c *Config) JobFunction(model, job string) string {
	if c.Naming == NamingPlugin {
		return model + "." + job + c.FunctionSuffix
	}
	return c.Namespace + "." + model + "." + job
}

// Note is something gearman.yml says that rowgear reads differently from
// sfGearmanPlugin, reported at load (Config.Notes) with its place.
type Note struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (n Note) String() string {
	return (&Error{File: n.File, Line: n.Line, Key: n.Key, Msg: n.Msg}).Error()
}

// note records a Note at n.
func (d *decoder) note(n *yaml.Node, format string, args ...any) {
	d.notes = append(d.notes, Note{File: d.file, Line: n.Line, Key: d.key[n], Msg: fmt.Sprintf(format, args...)})
}

var serializerNames = []string{"json", "php"}

// serializer decodes `serializer: php` or
// `serializer: {default: json, server: {..}, set: {..}, function: {..}}`.
func (d *decoder) serializer(n *yaml.Node) error {
	s := &d.c.Serializer
	if n.Kind == yaml.ScalarNode {
		return oneOf(n, &s.Default, serializerNames...)
	}
	y := serializerKeys{Default: s.Default}
	if err := fields(n, &y); err != nil {
		return err
	}
	for _, p := range pairs(child(n, "server")) {
		if _, ok := d.c.Servers[p.k.Value]; !ok {
			return fail(p.k, "unknown gearman connection %q (define it under server:)", p.k.Value)
		}
	}
	s.Default = y.Default
	maps.Copy(s.Server, y.Server)
	maps.Copy(s.Set, y.Set)
	maps.Copy(s.Function, y.Function)
	return nil
}

// serializerKeys is the mapping form of serializer:.
type serializerKeys struct {
	Default  string `yaml:"default"`
	Server   codecs `yaml:"server"`
	Set      codecs `yaml:"set"`
	Function codecs `yaml:"function"`
}

// want says what each key of serializer: takes (see fields).
func (s *serializerKeys) want(key string) (string, bool) {
	return "json or php", key != "default" || slices.Contains(serializerNames, s.Default) // codecs check themselves
}

// codecs maps names to "json" or "php".
type codecs map[string]string

func (cs *codecs) UnmarshalYAML(n *yaml.Node) error {
	*cs = codecs{}
	return each(n, func(k, v *yaml.Node) error {
		var c string
		err := oneOf(v, &c, serializerNames...)
		(*cs)[k.Value] = c
		return err
	})
}

// applyNaming settles Namespace and FunctionSuffix once every section is
// read, and notes a plugin namespace that rowgear would read as a prefix;
// ns is the namespace: value, nil when not written.
func (d *decoder) applyNaming(ns *yaml.Node) {
	c := d.c
	switch {
	case c.Naming == NamingPlugin:
		if ns != nil && c.Namespace != "" {
			c.FunctionSuffix = "@" + c.Namespace
		}
		c.Namespace = DefaultNamespace
	case ns != nil && !d.namingSet:
		d.note(ns, "rowgear prefixes row-event and job functions with it (%s.Article.update) and leaves plain functions and queues alone; sfGearmanPlugin appended it to every function (reverse@%s, Article.publish@%s): write naming: plugin to keep the plugin's names, or naming: rowgear to silence this note",
			c.Namespace, c.Namespace, c.Namespace)
	}
	c.Notes = d.notes
}
