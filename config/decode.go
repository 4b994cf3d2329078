package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"gopkg.in/yaml.v3"

	"github.com/rowgear/rowgear/events"
)

// sections are the keys an environment section may hold, decoded in this
// order: servers before the sections naming one, models before the dbworker
// sets checked against them.
var sections = []section{
	{"naming", func(d *decoder, n *yaml.Node) error { return oneOf(n, &d.c.Naming, NamingRowgear, NamingPlugin) }},
	{"namespace", (*decoder).namespace},
	{"server", (*decoder).servers},
	{"serializer", (*decoder).serializer},
	{"worker", (*decoder).workers},
	{"models", (*decoder).models},
	{"doctrine", (*decoder).dbworkers},
	{"dbworker", (*decoder).dbworkers},
	{"database", (*decoder).database},
	{"binlog", (*decoder).binlog},
	{"triggers", func(d *decoder, n *yaml.Node) error { return fields(n, &d.c.Triggers) }},
	{"retry", (*decoder).retry},
}

type section struct {
	name   string
	decode func(*decoder, *yaml.Node) error
}

func isSection(name string) bool {
	return slices.ContainsFunc(sections, func(s section) bool { return s.name == name })
}

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
	d.c = &Config{
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
		Triggers:   Triggers{Mode: "outbox"},
		Retry:      map[string]RetryPolicy{"default": DefaultRetry},
		Naming:     NamingRowgear,
		Serializer: Serializer{Server: map[string]string{}, Set: map[string]string{}, Function: map[string]string{}},
		workerAt:   map[[2]string]string{},
	}
	given := map[string]*yaml.Node{}
	for _, p := range pairs(n) {
		if !isSection(p.k.Value) {
			var names []string
			for _, s := range sections {
				names = append(names, s.name)
			}
			return nil, fail(p.k, "unknown section (want one of %s)", strings.Join(names, ", "))
		}
		if !isNull(p.v) { // a ~ section keeps the defaults
			given[p.k.Value] = p.v
		}
	}
	for _, s := range sections {
		if v, ok := given[s.name]; ok {
			if err := s.decode(d, v); err != nil {
				return nil, err
			}
		}
	}
	_, d.namingSet = given["naming"]
	d.applyNaming(given["namespace"])
	return d.c, nil
}

// nodeError is a problem at node n. The decoding below returns it, from
// UnmarshalYAML methods too (yaml.v3 passes their errors through), and
// decoder.located turns it into an *Error with n's line and key path.
type nodeError struct {
	n   *yaml.Node
	msg string
	err error // the cause, if any
}

func (e *nodeError) Error() string { return e.msg }

// fail returns a nodeError at n; an error among args is kept as the cause.
func fail(n *yaml.Node, format string, args ...any) error {
	e := &nodeError{n: n, msg: fmt.Sprintf(format, args...)}
	for _, a := range args {
		if err, ok := a.(error); ok {
			e.err = err
		}
	}
	return e
}

// entries returns mapping n's pairs; ~ is an empty mapping.
func entries(n *yaml.Node) ([]pair, error) {
	if !isNull(n) && n.Kind != yaml.MappingNode {
		return nil, fail(n, "want a mapping, got %s", describe(n))
	}
	return pairs(n), nil
}

// each calls f with each key and value of mapping n, until an error.
func each(n *yaml.Node, f func(k, v *yaml.Node) error) error {
	ps, err := entries(n)
	for _, p := range ps {
		if err == nil {
			err = f(p.k, p.v)
		}
	}
	return err
}

// scalar returns n's value; anything else, ~ included, is refused.
func scalar(n *yaml.Node, want string) (string, error) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		return "", fail(n, "want %s, got %s", want, describe(n))
	}
	return n.Value, nil
}

// oneOf decodes an enumerated scalar into *dst.
func oneOf(n *yaml.Node, dst *string, allowed ...string) error {
	want := strings.Join(allowed, " or ")
	v, err := scalar(n, want)
	if err != nil {
		return err
	}
	if !slices.Contains(allowed, v) {
		return fail(n, "want %s, got %q", want, v)
	}
	*dst = v
	return nil
}

// keyed is a section's struct, decoded by fields: want says what key's
// value must be and whether the value decoded into the struct is one.
type keyed interface {
	want(key string) (string, bool)
}

// fields decodes mapping n into the struct *dst with yaml.v3, key by key
// into the field its yaml tag names: KnownFields with rowgear's errors. A
// key no tag names is refused with the keys there are; a value yaml.v3
// cannot decode into its field, or that dst.want refuses, is refused with
// what the key wants. A ~ keeps the field's value, the default (yaml.v3
// would zero it).
func fields(n *yaml.Node, dst keyed) error {
	ps, err := entries(n)
	if err != nil {
		return err
	}
	v := reflect.ValueOf(dst).Elem()
	var keys []string
	index := map[string]int{} // key -> field
	for i := range v.NumField() {
		if k := v.Type().Field(i).Tag.Get("yaml"); k != "" {
			keys, index[k] = append(keys, k), i
		}
	}
	for _, p := range ps {
		i, known := index[p.k.Value]
		if !known {
			return fail(p.k, "unknown key (want %s)", strings.Join(keys, ", "))
		}
		if isNull(p.v) {
			continue
		}
		f, val := v.Field(i).Addr().Interface(), p.v
		if _, custom := f.(yaml.Unmarshaler); !custom && v.Field(i).Kind() != reflect.String && val.Kind == yaml.ScalarNode {
			// Read a number, duration or boolean from its text, quoted or
			// not: ${VAR} expansion leaves the tag of the text written.
			c := *val
			c.Tag, c.Style = "", 0
			val = &c
		}
		err := val.Decode(f)
		if _, ok := err.(*nodeError); ok { // from a field's UnmarshalYAML
			return err
		}
		if want, ok := dst.want(p.k.Value); err != nil || !ok {
			return fail(p.v, "want %s, got %s", want, quoteOrDescribe(p.v))
		}
	}
	return nil
}

// child returns the value of key in mapping n, or n itself when it has
// none, to place an error about that key.
func child(n *yaml.Node, key string) *yaml.Node {
	for _, p := range pairs(n) {
		if p.k.Value == key {
			return p.v
		}
	}
	return n
}

// names decodes a list of distinct strings matching re.
func names(n *yaml.Node, re *regexp.Regexp, what string) ([]string, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, fail(n, "want a list of %s, got %s", what, describe(n))
	}
	out := []string{}
	for _, it := range n.Content {
		if it.Kind != yaml.ScalarNode || isNull(it) || !re.MatchString(it.Value) {
			return nil, fail(it, "want %s, got %s", what, quoteOrDescribe(it))
		}
		if slices.Contains(out, it.Value) {
			return nil, fail(it, "duplicate %q", it.Value)
		}
		out = append(out, it.Value)
	}
	return out, nil
}

func quoteOrDescribe(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		return strconv.Quote(n.Value)
	}
	return describe(n)
}

func (d *decoder) namespace(n *yaml.Node) error {
	v, err := scalar(n, "a name")
	if err != nil {
		return err
	}
	if !namespaceRE.MatchString(v) {
		return fail(n, "want letters, digits, _ or -, got %q", v)
	}
	d.c.Namespace = v
	return nil
}

// servers decodes `server:`: connection name -> addrs.
func (d *decoder) servers(n *yaml.Node) error {
	return each(n, func(k, v *yaml.Node) error {
		var a addrs
		err := a.UnmarshalYAML(v)
		d.c.Servers[k.Value] = a
		return err
	})
}

// addrs is a connection's servers: "host:port" | {host, port} | a list of
// both. A string may also hold several comma-separated addresses, so that a
// single ${VAR} can name a cluster; ~ is php-gearman's default server, as in
// the plugin's own gearman.yml.
type addrs []string

func (a *addrs) UnmarshalYAML(n *yaml.Node) error {
	items := []*yaml.Node{n}
	switch {
	case isNull(n):
		*a = addrs{DefaultServer}
		return nil
	case n.Kind == yaml.SequenceNode:
		if len(n.Content) == 0 {
			return fail(n, "empty list of servers")
		}
		items = n.Content
	}
	for _, it := range items {
		switch {
		case it.Kind == yaml.MappingNode:
			var hp hostPortKeys
			if err := fields(it, &hp); err != nil {
				return err
			}
			if hp.Host == "" {
				return fail(it, "missing host")
			}
			s, err := hostPort(hp.Host, hp.Port)
			if err != nil {
				return fail(child(it, "host"), "%v", err)
			}
			*a = append(*a, s)
		case it.Kind == yaml.ScalarNode && !isNull(it):
			for s := range strings.SplitSeq(it.Value, ",") {
				s, err := hostPort(strings.TrimSpace(s), 0)
				if err != nil {
					return fail(it, "%v", err)
				}
				*a = append(*a, s)
			}
		default:
			return fail(it, "want host:port or {host: h, port: p}, got %s", describe(it))
		}
	}
	return nil
}

// hostPortKeys is the plugin's {host: h, port: p}.
type hostPortKeys struct {
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
}

// want says what each key of {host, port} takes (see fields).
func (hp *hostPortKeys) want(key string) (string, bool) {
	if key == "port" {
		return "a port number 1-65535", hp.Port >= 1 && hp.Port <= 65535
	}
	return "a host name or address", hp.Host != ""
}

// hostPort normalizes an address to "host:port"; port, if not 0, overrides
// a port in s; with neither, the port is DefaultPort.
func hostPort(s string, port int) (string, error) {
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
	switch {
	case port != 0:
	case p == "":
		port = DefaultPort
	default:
		if port, err = parsePort(p); err != nil {
			return "", err
		}
	}
	if host == "" {
		return "", fmt.Errorf("missing host in %q", s)
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("want a port number 1-65535, got %q", s)
	}
	return n, nil
}

// workers decodes `worker:`: set -> function -> handler.
func (d *decoder) workers(n *yaml.Node) error {
	return each(n, func(s, fns *yaml.Node) error {
		if isNull(fns) {
			return fail(fns, "want function: [Handler, method] entries, got ~ (null)")
		}
		set := WorkerSet{}
		d.c.Workers[s.Value] = set
		return each(fns, func(f, v *yaml.Node) error {
			if f.Value == "" {
				return fail(f, "empty function name")
			}
			var h handler
			if err := h.UnmarshalYAML(v); err != nil {
				return err
			}
			if h.Type == "" {
				d.note(v, "a PHP callback %s: rowgear runs the Go handler registered under %s", strconv.Quote(h.Method), strconv.Quote(h.Method))
			}
			set[f.Value] = HandlerRef(h)
			d.c.workerAt[[2]string{s.Value, f.Value}] = fmt.Sprintf("%s:%d", d.file, f.Line)
			return nil
		})
	})
}

// handler is the seed's [Handler, method], or the plugin's callback: a PHP
// function name, or "Class::method", run by the Go handler registered
// under that name (a name alone has an empty Type).
type handler HandlerRef

func (h *handler) UnmarshalYAML(n *yaml.Node) error {
	const want = "want [Handler, method]"
	if n.Kind != yaml.SequenceNode {
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" || n.Value == "" {
			return fail(n, "%s or a callback name, got %s", want, describe(n))
		}
		*h = handler{Method: n.Value}
		if t, m, ok := strings.Cut(n.Value, "::"); ok && t != "" && m != "" {
			*h = handler{Type: t, Method: m}
		}
		return nil
	}
	if len(n.Content) != 2 {
		return fail(n, "%s, got %s", want, describe(n))
	}
	for _, it := range n.Content {
		if it.Kind != yaml.ScalarNode || isNull(it) || it.Value == "" {
			return fail(it, "%s, got %s", want, describe(it))
		}
	}
	*h = handler{Type: n.Content[0].Value, Method: n.Content[1].Value}
	return nil
}

// dbworkers decodes `doctrine:` or `dbworker:`: set -> Model -> jobs. The
// two sections share one namespace of set names.
func (d *decoder) dbworkers(n *yaml.Node) error {
	return each(n, func(s, models *yaml.Node) error {
		if first, dup := d.dbSets[s.Value]; dup {
			return fail(s, "set also defined under doctrine: at line %d", first.Line)
		}
		d.dbSets[s.Value] = s
		if isNull(models) {
			return fail(models, "want Model: ~ or Model: [jobs..., ~] entries, got ~ (null)")
		}
		set := DBWorkerSet{}
		d.c.DBWorkers[s.Value] = set
		return each(models, func(m, jobs *yaml.Node) (err error) {
			if !identRE.MatchString(m.Value) {
				return fail(m, "want a model name (letters, digits, _)")
			}
			emits := allEvents
			if model, declared := d.c.Models[m.Value]; declared {
				emits = model.Events
			}
			set[m.Value], err = modelJobs(jobs, emits)
			return err
		})
	})
}

// modelJobs decodes `~` or `[buildFeed, publish, update, ~]`. Explicit
// events must be among emits, the model's declared ones when it is declared
// under models: (the seed's examples declare none and must still load).
func modelJobs(n *yaml.Node, emits []string) (ModelJobs, error) {
	var mj ModelJobs
	switch {
	case isNull(n):
		return ModelJobs{AllEvents: true}, nil
	case n.Kind != yaml.SequenceNode:
		return mj, fail(n, "want ~ or a list of jobs (~ for all events), got %s", describe(n))
	case len(n.Content) == 0:
		return mj, fail(n, "empty list: write ~ for all events")
	}
	for _, it := range n.Content {
		v := it.Value
		switch {
		case isNull(it) && mj.AllEvents:
			return mj, fail(it, "duplicate ~")
		case isNull(it):
			mj.AllEvents = true
		case it.Kind != yaml.ScalarNode || !identRE.MatchString(v):
			return mj, fail(it, "want a job name, an event or ~, got %s", quoteOrDescribe(it))
		case slices.Contains(mj.Jobs, v) || slices.Contains(mj.Events, v):
			return mj, fail(it, "duplicate %q", v)
		case !slices.Contains(allEvents, v):
			mj.Jobs = append(mj.Jobs, v)
		case !slices.Contains(emits, v):
			return mj, fail(it, "the model does not emit %s (see its events under models:)", v)
		default:
			mj.Events = append(mj.Events, v)
		}
	}
	return mj, nil
}

// models decodes `models:`: Model -> model.
func (d *decoder) models(n *yaml.Node) error {
	tables := map[string]string{} // schema.table -> model, one model per table
	return each(n, func(name, v *yaml.Node) error {
		if !identRE.MatchString(name.Value) {
			return fail(name, "want a model name (letters, digits, _)")
		}
		if isNull(v) {
			return fail(v, "want {table: ...}, got ~ (null)")
		}
		y := modelKeys{Events: allEvents, Source: "trigger", Ordered: true}
		if err := fields(v, &y); err != nil {
			return err
		}
		if y.Table == "" {
			return fail(v, "missing table")
		}
		t := y.Schema + "." + y.Table
		if other, dup := tables[t]; dup {
			return fail(child(v, "table"), "table %s is already the table of model %s", y.Table, other)
		}
		tables[t] = name.Value
		d.c.Models[name.Value] = Model{Table: y.Table, Schema: y.Schema, Events: slices.Clone(y.Events), Columns: y.Columns,
			Source: y.Source, Unordered: !y.Ordered, SnapshotAs: y.Snapshot}
		return nil
	})
}

// modelKeys is a Model as written in gearman.yml.
type modelKeys struct {
	Table    string     `yaml:"table"`
	Schema   string     `yaml:"schema"`
	Events   eventList  `yaml:"events"`
	Columns  columnList `yaml:"columns"`
	Source   string     `yaml:"source"`
	Ordered  bool       `yaml:"ordered"`
	Snapshot string     `yaml:"snapshot"`
}

// want says what each key of a model takes (see fields).
func (m *modelKeys) want(key string) (string, bool) {
	const name = "a name of letters, digits, _ or $ (at most 64)"
	switch key {
	case "table":
		return name, sqlNameRE.MatchString(m.Table)
	case "schema":
		return name, sqlNameRE.MatchString(m.Schema)
	case "source":
		return "trigger or binlog", m.Source == "trigger" || m.Source == "binlog"
	case "snapshot":
		return "snapshot or insert", m.Snapshot == "snapshot" || m.Snapshot == "insert"
	}
	return "true or false", true // ordered; events and columns check themselves
}

// eventList and columnList are lists of distinct names, each refused at
// its place in the list.
type (
	eventList  []string
	columnList []string
)

func (l *eventList) UnmarshalYAML(n *yaml.Node) (err error) {
	*l, err = names(n, eventRE, "insert, update or delete")
	return err
}

func (l *columnList) UnmarshalYAML(n *yaml.Node) (err error) {
	*l, err = names(n, sqlNameRE, "a column name")
	return err
}

func (d *decoder) database(n *yaml.Node) error {
	db := &d.c.Database
	if err := fields(n, db); err != nil {
		return err
	}
	// Checked now so a typo is reported with its line, not at first
	// connect; the message never includes the DSN (it may hold a password).
	if _, err := mysql.ParseDSN(db.DSN); db.DSN != "" && err != nil {
		return fail(child(n, "dsn"), "want a go-sql-driver DSN such as user:pass@tcp(host:3306)/db: %v", err)
	}
	var err error
	if db.PasswordFile != "" {
		if db.password, err = readPassword(db.PasswordFile); err != nil {
			return fail(child(n, "password_file"), "%v", err)
		}
	} else if f, ok := d.lookup("ROWGEAR_DB_PASSWORD_FILE"); ok && f != "" {
		if db.password, err = readPassword(f); err != nil {
			return fmt.Errorf("%s: ROWGEAR_DB_PASSWORD_FILE: %w", d.file, err)
		}
		db.PasswordFile = f
	}
	db.DSN, err = db.WithPassword(db.DSN) // cannot fail: the DSN parsed
	return err
}

// want says what each key of database: takes (see fields).
func (*Database) want(key string) (string, bool) {
	if key == "dsn" {
		return "a DSN", true
	}
	return "a file name", true
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

func (d *decoder) binlog(n *yaml.Node) error {
	if err := fields(n, &d.c.Binlog); err != nil {
		return err
	}
	if s := d.c.Binlog.Server; d.c.Servers[s] == nil {
		return fail(child(n, "server"), "unknown gearman connection %q (define it under server:)", s)
	}
	return nil
}

// want says what each key of binlog: takes (see fields).
func (b *Binlog) want(key string) (string, bool) {
	switch key {
	case "server_id":
		return "a replica server id 1-4294967295", b.ServerID > 0
	case "flavor":
		return "mariadb or mysql", b.Flavor == "mariadb" || b.Flavor == "mysql"
	case "position":
		path, isFile := strings.CutPrefix(b.Position, "file:")
		return `"table", "gtid", "file" or "file:PATH"`, b.Position == "table" || b.Position == "gtid" || b.Position == "file" || isFile && path != ""
	case "ha":
		return "true or false", true
	case "lease_ttl":
		return "a duration of at least 300ms such as 3s", b.LeaseTTL >= 300*time.Millisecond
	case "concurrency":
		return "a positive number of connections", b.Concurrency > 0
	case "batch":
		return fmt.Sprintf("the most events a job carries, 1 to %d", events.MaxBatch), b.Batch > 0 && b.Batch <= events.MaxBatch
	case "stats_interval":
		return "a positive duration such as 10s or 1m", b.StatsInterval > 0
	}
	return "a connection name", true // server: checked by binlog
}

// want says what each key of triggers: takes (see fields).
func (t *Triggers) want(key string) (string, bool) {
	switch key {
	case "resend_after":
		return "a duration of at least 10ms such as 30s", t.ResendAfter >= 10*time.Millisecond
	case "poll":
		return "a duration of at least 10ms such as 1s", t.Poll >= 10*time.Millisecond
	case "batch":
		return fmt.Sprintf("the most events a job carries, 1 to %d", events.MaxBatch), t.Batch > 0 && t.Batch <= events.MaxBatch
	}
	return "strict or lenient or outbox", t.Mode == "strict" || t.Mode == "lenient" || t.Mode == "outbox"
}

// retryKeyRE: "default", a function, Model or Model.job.
var retryKeyRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)

func (d *decoder) retry(n *yaml.Node) error {
	return each(n, func(k, v *yaml.Node) error {
		if !retryKeyRE.MatchString(k.Value) {
			return fail(k, "want default, a function name, Model or Model.job")
		}
		p := d.c.Retry["default"] // unset keys inherit the default policy
		if err := fields(v, &p); err != nil {
			return err
		}
		if p.MaxBackoff < p.Backoff {
			return fail(v, "max_backoff %s is below backoff %s", p.MaxBackoff, p.Backoff)
		}
		d.c.Retry[k.Value] = p
		return nil
	})
}

// want says what each key of a retry policy takes (see fields).
func (r *RetryPolicy) want(key string) (string, bool) {
	if key == "attempts" {
		return "a number of attempts >= 1", r.Attempts >= 1
	}
	return "a duration such as 500ms or 1m", r.Backoff >= 0 && r.MaxBackoff >= 0 && r.Timeout >= 0
}
