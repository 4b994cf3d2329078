package config

import (
	"strconv"
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

func (d *decoder) note(n *yaml.Node, path, format string, args ...any) {
	e := d.errorf(n, path, format, args...)
	d.notes = append(d.notes, Note{File: e.File, Line: e.Line, Key: e.Key, Msg: e.Msg})
}

func (d *decoder) naming(n *yaml.Node, c *Config) error {
	return d.oneOf(n, "naming", &c.Naming, NamingRowgear, NamingPlugin)
}

var serializerNames = []string{"json", "php"}

// serializer decodes `serializer: php` or
// `serializer: {default: json, server: {..}, set: {..}, function: {..}}`.
func (d *decoder) serializer(n *yaml.Node, c *Config) error {
	if n.Kind == yaml.ScalarNode {
		return d.oneOf(n, "serializer", &c.Serializer.Default, serializerNames...)
	}
	ps, err := d.mapping(n, "serializer")
	if err != nil {
		return err
	}
	for _, p := range ps {
		kp := join("serializer", p.k.Value)
		var dst map[string]string
		switch p.k.Value {
		case "default":
			if err := d.oneOf(p.v, kp, &c.Serializer.Default, serializerNames...); err != nil {
				return err
			}
			continue
		case "server":
			dst = c.Serializer.Server
		case "set":
			dst = c.Serializer.Set
		case "function":
			dst = c.Serializer.Function
		default:
			return d.errorf(p.k, kp, "unknown key (want default, server, set, function)")
		}
		items, err := d.mapping(p.v, kp)
		if err != nil {
			return err
		}
		for _, it := range items {
			ip := join(kp, it.k.Value)
			var v string
			if err := d.oneOf(it.v, ip, &v, serializerNames...); err != nil {
				return err
			}
			if v == "" {
				return d.errorf(it.v, ip, "want json or php, got ~ (null)")
			}
			if p.k.Value == "server" {
				if _, ok := c.Servers[it.k.Value]; !ok {
					return d.errorf(it.k, ip, "unknown gearman connection %q (define it under server:)", it.k.Value)
				}
			}
			dst[it.k.Value] = v
		}
	}
	return nil
}

// applyNaming settles Namespace and FunctionSuffix once every section is
// read, and notes a plugin namespace that rowgear would read as a prefix.
func (d *decoder) applyNaming(c *Config, nsNode *yaml.Node) {
	switch {
	case c.Naming == NamingPlugin:
		if nsNode != nil && c.Namespace != "" {
			c.FunctionSuffix = "@" + c.Namespace
		}
		c.Namespace = DefaultNamespace
	case nsNode != nil && !d.namingSet:
		d.note(nsNode, "namespace", "rowgear prefixes row-event and job functions with it (%s.Article.update) and leaves plain functions and queues alone; sfGearmanPlugin appended it to every function (reverse@%s, Article.publish@%s): write naming: plugin to keep the plugin's names, or naming: rowgear to silence this note",
			c.Namespace, c.Namespace, c.Namespace)
	}
	c.Notes = d.notes
}

// callbackString reads the plugin's `function: callback` (a PHP function
// name, or "Class::method"): the Go handler registered under that name.
func (d *decoder) callbackString(n *yaml.Node, path string) (HandlerRef, error) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" || n.Value == "" {
		return HandlerRef{}, d.errorf(n, path, "want [Handler, method] or a callback name, got %s", describe(n))
	}
	if t, m, ok := strings.Cut(n.Value, "::"); ok && t != "" && m != "" {
		return HandlerRef{Type: t, Method: m}, nil
	}
	d.note(n, path, "a PHP callback %s: rowgear runs the Go handler registered under %s", strconv.Quote(n.Value), strconv.Quote(n.Value))
	return HandlerRef{Method: n.Value}, nil
}
