package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"gopkg.in/yaml.v3"

	"github.com/rowgear/rowgear/events"
)

// sectionOrder lists the keys allowed inside an environment section, in the
// order they are decoded: servers before binlog (which names one), models
// before the dbworker sets (which are checked against them).
var sectionOrder = []string{"naming", "namespace", "server", "serializer", "worker", "models", "doctrine", "dbworker", "database", "binlog", "triggers", "retry"}

var sectionNames = func() map[string]struct{} {
	m := map[string]struct{}{}
	for _, s := range sectionOrder {
		m[s] = struct{}{}
	}
	return m
}()

// DefaultPort is the gearmand port used when an address has none.
const DefaultPort = 4730

// allEvents are the row events a model can emit, in their canonical order.
var allEvents = []string{"insert", "update", "delete"}

var (
	namespaceRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	// identRE: model and job names become Go-side registration names and
	// parts of gearman function names.
	identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// sqlNameRE: table, schema and column names end up in generated trigger
	// DDL; unquoted-safe names only, at most 64 characters (MySQL's limit).
	sqlNameRE = regexp.MustCompile(`^[A-Za-z0-9_$]{1,64}$`)
	eventRE   = regexp.MustCompile(`^(insert|update|delete)$`)
)

// config decodes a merged environment; n may be nil (empty file).
func (d *decoder) config(n *yaml.Node) (*Config, error) {
	c := &Config{
		Servers:   map[string][]string{"default": {DefaultServer}},
		Workers:   map[string]WorkerSet{},
		DBWorkers: map[string]DBWorkerSet{},
		Namespace: DefaultNamespace,
		Models:    map[string]Model{},
		Binlog: Binlog{
			ServerID:      1001,
			Flavor:        "mariadb",
			Position:      "table",
			Server:        "default",
			Concurrency:   8,
			Batch:         1,
			StatsInterval: 10 * time.Second,
		},
		Triggers:   Triggers{Mode: "strict"},
		Retry:      map[string]RetryPolicy{"default": DefaultRetry},
		Naming:     NamingRowgear,
		Serializer: Serializer{Server: map[string]string{}, Set: map[string]string{}, Function: map[string]string{}},
	}
	ps, err := d.mapping(n, "")
	if err != nil {
		return nil, err
	}
	secs := map[string]pair{}
	for _, p := range ps {
		if _, ok := sectionNames[p.k.Value]; !ok {
			return nil, d.errorf(p.k, p.k.Value, "unknown section (want one of %s)", strings.Join(sectionOrder, ", "))
		}
		secs[p.k.Value] = p
	}
	dbSetFrom := map[string]*yaml.Node{} // set name -> its key, across doctrine: and dbworker:
	for _, name := range sectionOrder {
		p, ok := secs[name]
		if !ok {
			continue
		}
		switch name {
		case "naming":
			d.namingSet = !isNull(p.v)
			err = d.naming(p.v, c)
		case "serializer":
			err = d.serializer(p.v, c)
		case "namespace":
			err = d.namespace(p.v, c)
		case "server":
			err = d.servers(p.v, c)
		case "worker":
			err = d.workers(p.v, c)
		case "models":
			err = d.models(p.v, c)
		case "doctrine", "dbworker":
			err = d.dbworkers(p.v, name, c, dbSetFrom)
		case "database":
			err = d.database(p.v, c)
		case "binlog":
			err = d.binlog(p.v, c)
		case "triggers":
			err = d.triggers(p.v, c)
		case "retry":
			err = d.retry(p.v, c)
		}
		if err != nil {
			return nil, err
		}
	}
	var nsNode *yaml.Node
	if p, ok := secs["namespace"]; ok && !isNull(p.v) {
		nsNode = p.v
	}
	d.applyNaming(c, nsNode)
	return c, nil
}

// mapping returns n's pairs; a null n is an empty mapping.
func (d *decoder) mapping(n *yaml.Node, path string) ([]pair, error) {
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, d.errorf(n, path, "want a mapping, got %s", describe(n))
	}
	return pairs(n), nil
}

// scalar returns n's value; ok is false for a null n (use the default).
func (d *decoder) scalar(n *yaml.Node, path, want string) (v string, ok bool, err error) {
	if isNull(n) {
		return "", false, nil
	}
	if n.Kind != yaml.ScalarNode {
		return "", false, d.errorf(n, path, "want %s, got %s", want, describe(n))
	}
	return n.Value, true, nil
}

// oneOf decodes an optional enumerated scalar into *dst.
func (d *decoder) oneOf(n *yaml.Node, path string, dst *string, allowed ...string) error {
	want := strings.Join(allowed, " or ")
	v, ok, err := d.scalar(n, path, want)
	if err != nil || !ok {
		return err
	}
	if !slices.Contains(allowed, v) {
		return d.errorf(n, path, "want %s, got %q", want, v)
	}
	*dst = v
	return nil
}

// names decodes a list of distinct strings matching re.
func (d *decoder) names(n *yaml.Node, path string, re *regexp.Regexp, what string) ([]string, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, d.errorf(n, path, "want a list of %s, got %s", what, describe(n))
	}
	out := []string{}
	for i, it := range n.Content {
		ip := index(path, i)
		v, ok, err := d.scalar(it, ip, what)
		if err != nil {
			return nil, err
		}
		if !ok || !re.MatchString(v) {
			return nil, d.errorf(it, ip, "want %s, got %s", what, quoteOrDescribe(it))
		}
		if slices.Contains(out, v) {
			return nil, d.errorf(it, ip, "duplicate %q", v)
		}
		out = append(out, v)
	}
	return out, nil
}

func quoteOrDescribe(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		return strconv.Quote(n.Value)
	}
	return describe(n)
}

func (d *decoder) namespace(n *yaml.Node, c *Config) error {
	v, ok, err := d.scalar(n, "namespace", "a name")
	if err != nil || !ok {
		return err
	}
	if !namespaceRE.MatchString(v) {
		return d.errorf(n, "namespace", "want letters, digits, _ or -, got %q", v)
	}
	c.Namespace = v
	return nil
}

// servers decodes `server:`: name -> "host:port" | {host, port} | a list of
// both. A string may also hold several comma-separated addresses, so that a
// single ${VAR} can name a cluster.
func (d *decoder) servers(n *yaml.Node, c *Config) error {
	ps, err := d.mapping(n, "server")
	if err != nil {
		return err
	}
	for _, p := range ps {
		path := join("server", p.k.Value)
		var items []*yaml.Node
		switch {
		case isNull(p.v):
			// The plugin's own gearman.yml: ~ is php-gearman's default server.
			c.Servers[p.k.Value] = []string{DefaultServer}
			continue
		case p.v.Kind == yaml.SequenceNode:
			if len(p.v.Content) == 0 {
				return d.errorf(p.v, path, "empty list of servers")
			}
			items = p.v.Content
		default:
			items = []*yaml.Node{p.v}
		}
		var addrs []string
		for i, it := range items {
			ip := path
			if p.v.Kind == yaml.SequenceNode {
				ip = index(path, i)
			}
			a, err := d.server(it, ip)
			if err != nil {
				return err
			}
			addrs = append(addrs, a...)
		}
		c.Servers[p.k.Value] = addrs
	}
	return nil
}

func (d *decoder) server(n *yaml.Node, path string) ([]string, error) {
	switch {
	case n.Kind == yaml.MappingNode:
		a, err := d.hostPortMap(n, path)
		return []string{a}, err
	case n.Kind == yaml.ScalarNode && !isNull(n):
		var out []string
		for s := range strings.SplitSeq(n.Value, ",") {
			a, err := hostPort(strings.TrimSpace(s), "")
			if err != nil {
				return nil, d.errorf(n, path, "%v", err)
			}
			out = append(out, a)
		}
		return out, nil
	}
	return nil, d.errorf(n, path, "want host:port or {host: h, port: p}, got %s", describe(n))
}

func (d *decoder) hostPortMap(n *yaml.Node, path string) (string, error) {
	var host, port string
	var hostNode *yaml.Node
	for _, p := range pairs(n) {
		kp := join(path, p.k.Value)
		if p.k.Value != "host" && p.k.Value != "port" {
			return "", d.errorf(p.k, kp, "unknown key (want host, port)")
		}
		v, ok, err := d.scalar(p.v, kp, "a "+p.k.Value)
		if err != nil {
			return "", err
		}
		if p.k.Value == "port" {
			if _, err := parsePort(v); ok && err != nil {
				return "", d.errorf(p.v, kp, "%v", err)
			}
			port = v
			continue
		}
		if !ok || v == "" {
			return "", d.errorf(p.v, kp, "want a host name or address, got %s", describe(p.v))
		}
		host, hostNode = v, p.v
	}
	if hostNode == nil {
		return "", d.errorf(n, path, "missing host")
	}
	a, err := hostPort(host, port)
	if err != nil {
		return "", d.errorf(hostNode, join(path, "host"), "%v", err)
	}
	return a, nil
}

// hostPort normalizes an address to "host:port"; port, if not empty,
// overrides a port in s; with neither, the port is DefaultPort.
func hostPort(s, port string) (string, error) {
	if s == "" {
		return "", errors.New("want host:port, got an empty string")
	}
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		var ae *net.AddrError
		if !errors.As(err, &ae) || ae.Err != "missing port in address" {
			return "", fmt.Errorf("want host:port (IPv6 as [::1]:4730): %w", err)
		}
		host, p = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"), ""
	}
	if port != "" {
		p = port
	}
	n := DefaultPort
	if p != "" {
		if n, err = parsePort(p); err != nil {
			return "", err
		}
	}
	if host == "" {
		return "", fmt.Errorf("missing host in %q", s)
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("want a port number 1-65535, got %q", s)
	}
	return n, nil
}

// workers decodes `worker:`: set -> function -> [Handler, method].
func (d *decoder) workers(n *yaml.Node, c *Config) error {
	sets, err := d.mapping(n, "worker")
	if err != nil {
		return err
	}
	for _, s := range sets {
		path := join("worker", s.k.Value)
		if isNull(s.v) {
			return d.errorf(s.v, path, "want function: [Handler, method] entries, got ~ (null)")
		}
		fns, err := d.mapping(s.v, path)
		if err != nil {
			return err
		}
		set := WorkerSet{}
		for _, f := range fns {
			fp := join(path, f.k.Value)
			if f.k.Value == "" {
				return d.errorf(f.k, fp, "empty function name")
			}
			var h HandlerRef
			if f.v.Kind != yaml.SequenceNode {
				h, err = d.callbackString(f.v, fp)
			} else {
				h, err = d.handler(f.v, fp)
			}
			if err != nil {
				return err
			}
			set[f.k.Value] = h
			if c.workerAt == nil {
				c.workerAt = map[[2]string]string{}
			}
			c.workerAt[[2]string{s.k.Value, f.k.Value}] = fmt.Sprintf("%s:%d", d.file, f.k.Line)
		}
		c.Workers[s.k.Value] = set
	}
	return nil
}

func (d *decoder) handler(n *yaml.Node, path string) (HandlerRef, error) {
	const want = "want [Handler, method]"
	if n.Kind != yaml.SequenceNode || len(n.Content) != 2 {
		return HandlerRef{}, d.errorf(n, path, "%s, got %s", want, describe(n))
	}
	var parts [2]string
	for i, it := range n.Content {
		if it.Kind != yaml.ScalarNode || isNull(it) || it.Value == "" {
			return HandlerRef{}, d.errorf(it, index(path, i), "%s, got %s", want, describe(it))
		}
		parts[i] = it.Value
	}
	return HandlerRef{Type: parts[0], Method: parts[1]}, nil
}

// dbworkers decodes `doctrine:` or `dbworker:` (section): set -> Model -> ~
// or a list of jobs, events and ~. from tracks set names across both
// sections, which share one namespace.
func (d *decoder) dbworkers(n *yaml.Node, section string, c *Config, from map[string]*yaml.Node) error {
	sets, err := d.mapping(n, section)
	if err != nil {
		return err
	}
	for _, s := range sets {
		path := join(section, s.k.Value)
		if first, dup := from[s.k.Value]; dup {
			return d.errorf(s.k, path, "set also defined under doctrine: at line %d", first.Line)
		}
		from[s.k.Value] = s.k
		if isNull(s.v) {
			return d.errorf(s.v, path, "want Model: ~ or Model: [jobs..., ~] entries, got ~ (null)")
		}
		models, err := d.mapping(s.v, path)
		if err != nil {
			return err
		}
		set := DBWorkerSet{}
		for _, m := range models {
			mp := join(path, m.k.Value)
			if !identRE.MatchString(m.k.Value) {
				return d.errorf(m.k, mp, "want a model name (letters, digits, _)")
			}
			jobs, err := d.modelJobs(m.v, mp, m.k.Value, c.Models)
			if err != nil {
				return err
			}
			set[m.k.Value] = jobs
		}
		c.DBWorkers[s.k.Value] = set
	}
	return nil
}

// modelJobs decodes `~` or `[buildFeed, publish, update, ~]`. Explicit
// events are checked against the model's declared ones when it is declared
// under models: (the seed's examples declare none and must still load).
func (d *decoder) modelJobs(n *yaml.Node, path, name string, models map[string]Model) (ModelJobs, error) {
	if isNull(n) {
		return ModelJobs{AllEvents: true}, nil
	}
	if n.Kind != yaml.SequenceNode {
		return ModelJobs{}, d.errorf(n, path, "want ~ or a list of jobs (~ for all events), got %s", describe(n))
	}
	if len(n.Content) == 0 {
		return ModelJobs{}, d.errorf(n, path, "empty list: write ~ for all events")
	}
	var mj ModelJobs
	model, declared := models[name]
	for i, it := range n.Content {
		ip := index(path, i)
		if isNull(it) {
			if mj.AllEvents {
				return ModelJobs{}, d.errorf(it, ip, "duplicate ~")
			}
			mj.AllEvents = true
			continue
		}
		if it.Kind != yaml.ScalarNode || !identRE.MatchString(it.Value) {
			return ModelJobs{}, d.errorf(it, ip, "want a job name, an event or ~, got %s", quoteOrDescribe(it))
		}
		v := it.Value
		if slices.Contains(mj.Jobs, v) || slices.Contains(mj.Events, v) {
			return ModelJobs{}, d.errorf(it, ip, "duplicate %q", v)
		}
		if !slices.Contains(allEvents, v) {
			mj.Jobs = append(mj.Jobs, v)
			continue
		}
		if declared && !slices.Contains(model.Events, v) {
			return ModelJobs{}, d.errorf(it, ip, "the model does not emit %s (see its events under models:)", v)
		}
		mj.Events = append(mj.Events, v)
	}
	return mj, nil
}

// models decodes `models:`: Model -> {table, schema, events, columns, source}.
func (d *decoder) models(n *yaml.Node, c *Config) error {
	ms, err := d.mapping(n, "models")
	if err != nil {
		return err
	}
	tables := map[string]string{} // schema.table -> model, one model per table
	for _, m := range ms {
		path := join("models", m.k.Value)
		if !identRE.MatchString(m.k.Value) {
			return d.errorf(m.k, path, "want a model name (letters, digits, _)")
		}
		if isNull(m.v) {
			return d.errorf(m.v, path, "want {table: ...}, got ~ (null)")
		}
		model, err := d.model(m.v, path)
		if err != nil {
			return err
		}
		t := model.Schema + "." + model.Table
		if other, dup := tables[t]; dup {
			return d.errorf(m.v, join(path, "table"), "table %s is already the table of model %s", model.Table, other)
		}
		tables[t] = m.k.Value
		c.Models[m.k.Value] = model
	}
	return nil
}

func (d *decoder) model(n *yaml.Node, path string) (Model, error) {
	ps, err := d.mapping(n, path)
	if err != nil {
		return Model{}, err
	}
	m := Model{Events: slices.Clone(allEvents), Source: "trigger"}
	for _, p := range ps {
		kp := join(path, p.k.Value)
		switch p.k.Value {
		case "table", "schema":
			v, ok, err := d.scalar(p.v, kp, "a name")
			if err != nil {
				return Model{}, err
			}
			if ok && !sqlNameRE.MatchString(v) {
				return Model{}, d.errorf(p.v, kp, "want a name of letters, digits, _ or $ (at most 64), got %q", v)
			}
			if p.k.Value == "table" {
				m.Table = v
			} else {
				m.Schema = v
			}
		case "events":
			if isNull(p.v) {
				continue
			}
			ev, err := d.names(p.v, kp, eventRE, "insert, update or delete")
			if err != nil {
				return Model{}, err
			}
			m.Events = ev
		case "columns":
			if isNull(p.v) {
				continue
			}
			cols, err := d.names(p.v, kp, sqlNameRE, "a column name")
			if err != nil {
				return Model{}, err
			}
			m.Columns = cols
		case "source":
			if err := d.oneOf(p.v, kp, &m.Source, "trigger", "binlog"); err != nil {
				return Model{}, err
			}
		case "snapshot":
			if err := d.oneOf(p.v, kp, &m.SnapshotAs, "snapshot", "insert"); err != nil {
				return Model{}, err
			}
		case "ordered":
			var ordered bool
			if err := p.v.Decode(&ordered); err != nil || p.v.ShortTag() != "!!bool" {
				return Model{}, d.errorf(p.v, kp, "want true or false, got %q", p.v.Value)
			}
			m.Unordered = !ordered
		default:
			return Model{}, d.errorf(p.k, kp, "unknown key (want table, schema, events, columns, source, ordered, snapshot)")
		}
	}
	if m.Table == "" {
		return Model{}, d.errorf(n, path, "missing table")
	}
	return m, nil
}

func (d *decoder) database(n *yaml.Node, c *Config) error {
	ps, err := d.mapping(n, "database")
	if err != nil {
		return err
	}
	var dsnNode *yaml.Node
	for _, p := range ps {
		kp := join("database", p.k.Value)
		if p.k.Value == "password_file" {
			v, ok, err := d.scalar(p.v, kp, "a file name")
			if err != nil {
				return err
			}
			if ok && v != "" {
				if c.Database.password, err = readPassword(v); err != nil {
					return d.errorf(p.v, kp, "%v", err)
				}
				c.Database.PasswordFile = v
			}
			continue
		}
		if p.k.Value != "dsn" {
			return d.errorf(p.k, kp, "unknown key (want dsn, password_file)")
		}
		v, ok, err := d.scalar(p.v, kp, "a DSN")
		if err != nil || !ok {
			return err
		}
		dsnNode = p.v
		// Checked now so a typo is reported with its line, not at first
		// connect; the message never includes the DSN (it may hold a password).
		if _, err := mysql.ParseDSN(v); err != nil {
			return d.errorf(p.v, kp, "want a go-sql-driver DSN such as user:pass@tcp(host:3306)/db: %v", err)
		}
		c.Database.DSN = v
	}
	if c.Database.PasswordFile == "" {
		if f, ok := d.lookup("ROWGEAR_DB_PASSWORD_FILE"); ok && f != "" {
			var err error
			if c.Database.password, err = readPassword(f); err != nil {
				return fmt.Errorf("%s: ROWGEAR_DB_PASSWORD_FILE: %w", d.file, err)
			}
			c.Database.PasswordFile = f
		}
	}
	dsn, err := c.Database.WithPassword(c.Database.DSN)
	if err != nil {
		return d.errorf(dsnNode, "database.dsn", "%v", err)
	}
	c.Database.DSN = dsn
	return nil
}

// readPassword reads a password file: its content without the trailing
// newline; an empty file is an error (a missing secret, not a password).
func readPassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("password file: %w", err)
	}
	pw := strings.TrimRight(string(b), "\r\n")
	if pw == "" {
		return "", fmt.Errorf("password file %s is empty", path)
	}
	return pw, nil
}

var binlogKeys = []string{"server_id", "flavor", "position", "server", "concurrency", "batch", "stats_interval", "ha", "lease_ttl"}

// binlogSetters set one scalar key of binlog: from its value, or say what
// they want instead (flavor, a choice, is read apart).
var binlogSetters = map[string]func(c *Config, v string) error{
	"server_id": func(c *Config, v string) error {
		id, err := strconv.ParseUint(v, 10, 32)
		if err != nil || id == 0 {
			return fmt.Errorf("want a replica server id 1-4294967295, got %q", v)
		}
		c.Binlog.ServerID = uint32(id)
		return nil
	},
	"position": func(c *Config, v string) error {
		path, isFile := strings.CutPrefix(v, "file:")
		if v != "table" && v != "gtid" && v != "file" && (!isFile || path == "") {
			return fmt.Errorf(`want "table", "gtid", "file" or "file:PATH", got %q`, v)
		}
		c.Binlog.Position = v
		return nil
	},
	"server": func(c *Config, v string) error {
		if _, ok := c.Servers[v]; !ok {
			return fmt.Errorf("unknown gearman connection %q (define it under server:)", v)
		}
		c.Binlog.Server = v
		return nil
	},
	"concurrency": func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("want a positive number of connections, got %q", v)
		}
		c.Binlog.Concurrency = n
		return nil
	},
	"batch": func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > events.MaxBatch {
			return fmt.Errorf("want the most events a job carries, 1 to %d, got %q", events.MaxBatch, v)
		}
		c.Binlog.Batch = n
		return nil
	},
	"stats_interval": func(c *Config, v string) error {
		iv, err := time.ParseDuration(v)
		if err != nil || iv <= 0 {
			return fmt.Errorf("want a positive duration such as 10s or 1m, got %q", v)
		}
		c.Binlog.StatsInterval = iv
		return nil
	},
	"ha": func(c *Config, v string) error {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", v)
		}
		c.Binlog.HA = on
		return nil
	},
	"lease_ttl": func(c *Config, v string) error {
		iv, err := time.ParseDuration(v)
		if err != nil || iv < 300*time.Millisecond {
			return fmt.Errorf("want a duration of at least 300ms such as 3s, got %q", v)
		}
		c.Binlog.LeaseTTL = iv
		return nil
	},
}

func (d *decoder) binlog(n *yaml.Node, c *Config) error {
	ps, err := d.mapping(n, "binlog")
	if err != nil {
		return err
	}
	for _, p := range ps {
		kp := join("binlog", p.k.Value)
		if !slices.Contains(binlogKeys, p.k.Value) {
			return d.errorf(p.k, kp, "unknown key (want %s)", strings.Join(binlogKeys, ", "))
		}
		if p.k.Value == "flavor" {
			if err := d.oneOf(p.v, kp, &c.Binlog.Flavor, "mariadb", "mysql"); err != nil {
				return err
			}
			continue
		}
		v, ok, err := d.scalar(p.v, kp, "a value")
		if err != nil {
			return err
		}
		if !ok {
			continue // ~: keep the default
		}
		if err := binlogSetters[p.k.Value](c, v); err != nil {
			return d.errorf(p.v, kp, "%s", err.Error())
		}
	}
	return nil
}

func (d *decoder) triggers(n *yaml.Node, c *Config) error {
	ps, err := d.mapping(n, "triggers")
	if err != nil {
		return err
	}
	for _, p := range ps {
		kp := join("triggers", p.k.Value)
		if p.k.Value != "mode" {
			return d.errorf(p.k, kp, "unknown key (want mode)")
		}
		if err := d.oneOf(p.v, kp, &c.Triggers.Mode, "strict", "lenient"); err != nil {
			return err
		}
	}
	return nil
}

var retryKeys = []string{"attempts", "backoff", "max_backoff", "timeout"}

// retryKeyRE: "default", a function, Model or Model.job.
var retryKeyRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)

func (d *decoder) retry(n *yaml.Node, c *Config) error {
	ps, err := d.mapping(n, "retry")
	if err != nil {
		return err
	}
	for _, p := range ps {
		kp := join("retry", p.k.Value)
		if !retryKeyRE.MatchString(p.k.Value) {
			return d.errorf(p.k, kp, "want default, a function name, Model or Model.job")
		}
		pol := c.Retry["default"] // unset keys inherit the default policy
		fields, err := d.mapping(p.v, kp)
		if err != nil {
			return err
		}
		for _, f := range fields {
			fp := join(kp, f.k.Value)
			if !slices.Contains(retryKeys, f.k.Value) {
				return d.errorf(f.k, fp, "unknown key (want %s)", strings.Join(retryKeys, ", "))
			}
			v, ok, err := d.scalar(f.v, fp, "a value")
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if f.k.Value == "attempts" {
				a, err := strconv.Atoi(v)
				if err != nil || a < 1 {
					return d.errorf(f.v, fp, "want a number of attempts >= 1, got %q", v)
				}
				pol.Attempts = a
				continue
			}
			dur, err := time.ParseDuration(v)
			if err != nil || dur < 0 {
				return d.errorf(f.v, fp, "want a duration such as 500ms or 1m, got %q", v)
			}
			switch f.k.Value {
			case "backoff":
				pol.Backoff = dur
			case "max_backoff":
				pol.MaxBackoff = dur
			case "timeout":
				pol.Timeout = dur
			}
		}
		if pol.MaxBackoff < pol.Backoff {
			return d.errorf(p.v, kp, "max_backoff %s is below backoff %s", pol.MaxBackoff, pol.Backoff)
		}
		c.Retry[p.k.Value] = pol
	}
	return nil
}
