package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// lookup returns a LookupEnv over vars, so tests never read the process
// environment.
func lookup(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func parse(t *testing.T, yml, env string, vars map[string]string) (*Config, error) {
	t.Helper()
	return Loader{LookupEnv: lookup(vars)}.Parse("t.yml", []byte(yml), env)
}

func mustParse(t *testing.T, yml, env string, vars map[string]string) *Config {
	t.Helper()
	c, err := parse(t, yml, env, vars)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

// The gearman.yml examples of the seed README, copied verbatim (without the
// README's code indentation), each with what the README says it means.
func TestSeedExamples(t *testing.T) {
	def := []string{DefaultServer}
	tests := []struct {
		name      string
		yml       string
		servers   map[string][]string
		workers   map[string]WorkerSet
		dbworkers map[string]DBWorkerSet
	}{
		{
			name: "server host and port",
			yml: `all:
  server:
    default:
      host: 192.168.0.1
      port: 4730
`,
			servers: map[string][]string{"default": {"192.168.0.1:4730"}},
		},
		{
			name: "server host:port",
			yml: `all:
  server:
    default: 127.0.0.1:4730
`,
			servers: map[string][]string{"default": {"127.0.0.1:4730"}},
		},
		{
			name: "server list mixing notations",
			yml: `all:
  server:
    default:
      - 192.168.0.1:4730
      - { host: 192.168.0.2, port: 4730 }
`,
			servers: map[string][]string{"default": {"192.168.0.1:4730", "192.168.0.2:4730"}},
		},
		{
			name: "worker with one function",
			yml: `all:
  worker:
    example1:
      reverse: [Worker1, reverse]
`,
			servers: map[string][]string{"default": def},
			workers: map[string]WorkerSet{"example1": {"reverse": {"Worker1", "reverse"}}},
		},
		{
			name: "worker with two functions",
			yml: `all:
  worker:
    example1:
      reverse: [Worker1, reverse]
      hash: [Worker1, hash]
`,
			servers: map[string][]string{"default": def},
			workers: map[string]WorkerSet{"example1": {
				"reverse": {"Worker1", "reverse"},
				"hash":    {"Worker1", "hash"},
			}},
		},
		{
			name: "doctrine all events",
			yml: `all:
  doctrine:
    example2:
      Article: ~
`,
			servers:   map[string][]string{"default": def},
			dbworkers: map[string]DBWorkerSet{"example2": {"Article": {AllEvents: true}}},
		},
		{
			name: "doctrine custom record job",
			yml: `all:
  doctrine:
    example2:
      Article: [publish, ~]
`,
			servers:   map[string][]string{"default": def},
			dbworkers: map[string]DBWorkerSet{"example2": {"Article": {AllEvents: true, Jobs: []string{"publish"}}}},
		},
		{
			name: "doctrine table job",
			yml: `all:
  doctrine:
    example2:
      Article: [buildFeed, publish, ~]
`,
			servers:   map[string][]string{"default": def},
			dbworkers: map[string]DBWorkerSet{"example2": {"Article": {AllEvents: true, Jobs: []string{"buildFeed", "publish"}}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, env := range []string{"", "prod", "dev"} { // no env section: all: alone
				c := mustParse(t, tt.yml, env, nil)
				if tt.workers == nil {
					tt.workers = map[string]WorkerSet{}
				}
				if tt.dbworkers == nil {
					tt.dbworkers = map[string]DBWorkerSet{}
				}
				eq(t, "Servers", c.Servers, tt.servers)
				eq(t, "Workers", c.Workers, tt.workers)
				eq(t, "DBWorkers", c.DBWorkers, tt.dbworkers)
			}
		})
	}
}

// The seed's schema.yml `actAs: Gearmanable: {events: [update]}` is
// rowgear's models: section.
func TestModels(t *testing.T) {
	c := mustParse(t, `all:
  models:
    Article: {table: articles, events: [update], columns: [title, body]}
    Comment:
      table: comments
      schema: blog
      source: binlog
`, "", nil)
	eq(t, "Article", c.Models["Article"], Model{Table: "articles", Events: []string{"update"}, Columns: []string{"title", "body"}, Source: "trigger"})
	eq(t, "Comment", c.Models["Comment"], Model{Table: "comments", Schema: "blog", Events: []string{"insert", "update", "delete"}, Source: "binlog"})
}

// models.<Model>.ordered: false opts out of per-row ordering.
func TestModelOrdered(t *testing.T) {
	c := mustParse(t, "all:\n  models:\n    A: {table: a, ordered: false}\n    B: {table: b, ordered: true}\n    C: {table: c}\n", "", nil)
	if !c.Models["A"].Unordered || c.Models["B"].Unordered || c.Models["C"].Unordered {
		t.Errorf("Unordered: A %v, B %v, C %v; want true, false, false", c.Models["A"].Unordered, c.Models["B"].Unordered, c.Models["C"].Unordered)
	}
	_, err := parse(t, "all:\n  models:\n    A: {table: a, ordered: maybe}\n", "", nil)
	if err == nil || !strings.Contains(err.Error(), "t.yml:3: all.models.A.ordered: want true or false") {
		t.Errorf("ordered: maybe: err = %v", err)
	}
}

// models.<Model>.snapshot says how the bridge publishes snapshot rows.
func TestModelSnapshotAs(t *testing.T) {
	c := mustParse(t, "all:\n  models:\n    A: {table: a, snapshot: insert}\n    B: {table: b}\n", "", nil)
	if c.Models["A"].SnapshotAs != "insert" || c.Models["B"].SnapshotAs != "" {
		t.Errorf("SnapshotAs: A %q, B %q", c.Models["A"].SnapshotAs, c.Models["B"].SnapshotAs)
	}
	_, err := parse(t, "all:\n  models:\n    A: {table: a, snapshot: update}\n", "", nil)
	if err == nil || !strings.Contains(err.Error(), "t.yml:3: all.models.A.snapshot") {
		t.Errorf("snapshot: update: err = %v", err)
	}
}

func TestDefaults(t *testing.T) {
	for _, yml := range []string{"", "# nothing\n", "all:\n", "all: ~\n", "prod:\n  namespace: x\n"} {
		c := mustParse(t, yml, "", nil)
		eq(t, "Servers", c.Servers, map[string][]string{"default": {DefaultServer}})
		eq(t, "Namespace", c.Namespace, DefaultNamespace)
		eq(t, "Binlog", c.Binlog, Binlog{ServerID: 1001, Flavor: "mariadb", Position: "table", Server: "default", Concurrency: 8, Batch: 1, StatsInterval: 10 * time.Second})
		eq(t, "Triggers", c.Triggers, Triggers{Mode: "outbox"})
		eq(t, "Database", c.Database, Database{})
		if len(c.Workers)+len(c.DBWorkers)+len(c.Models) != 0 {
			t.Errorf("%q: want no sets or models, got %+v", yml, c)
		}
	}
}

func TestAllSections(t *testing.T) {
	c := mustParse(t, `all:
  namespace: shop-1
  server:
    default: gm1
    local: "[::1]:4731"
    cluster: gm1:4731, gm2
  database: {dsn: "u:p@tcp(db:3306)/app"}
  binlog:
    server_id: 7
    flavor: mysql
    position: file:/var/lib/rowgear/pos
    server: cluster
    concurrency: 8
    batch: 100
    stats_interval: 1m30s
  triggers: {mode: lenient, resend_after: 1m, poll: 250ms, batch: 20}
  models:
    Article: {table: articles, events: [update, delete]}
  dbworker:
    feed:
      Article: [update, buildFeed]
`, "", nil)
	eq(t, "Namespace", c.Namespace, "shop-1")
	eq(t, "Servers", c.Servers, map[string][]string{
		"default": {"gm1:4730"},
		"local":   {"[::1]:4731"},
		"cluster": {"gm1:4731", "gm2:4730"},
	})
	eq(t, "Database", c.Database, Database{DSN: "u:p@tcp(db:3306)/app"})
	eq(t, "Binlog", c.Binlog, Binlog{ServerID: 7, Flavor: "mysql", Position: "file:/var/lib/rowgear/pos", Server: "cluster", Concurrency: 8, Batch: 100, StatsInterval: 90 * time.Second})
	eq(t, "Triggers", c.Triggers, Triggers{Mode: "lenient", ResendAfter: time.Minute, Poll: 250 * time.Millisecond, Batch: 20})
	eq(t, "DBWorkers", c.DBWorkers, map[string]DBWorkerSet{"feed": {"Article": {Events: []string{"update"}, Jobs: []string{"buildFeed"}}}})
}

// TestBinlogPositionValues: each value binlog.position takes is kept as
// written (package bridge reads the mode and the store from it).
func TestBinlogPositionValues(t *testing.T) {
	for _, v := range []string{"table", "gtid", "file", "file:/var/lib/rowgear/pos"} {
		c := mustParse(t, "all:\n  binlog:\n    position: "+v+"\n", "", nil)
		eq(t, "Binlog.Position", c.Binlog.Position, v)
	}
}

const envYML = `all:
  server:
    default: 10.0.0.1
    backup: 10.0.0.2
  worker:
    example1:
      reverse: [Worker1, reverse]
      hash: [Worker1, hash]
  doctrine:
    example2:
      Article: [publish, ~]
  models:
    Article: {table: articles, events: [insert, update]}
  binlog: {server_id: 5, concurrency: 2}
prod:
  server:
    default: [10.1.0.1, 10.1.0.2]
  worker:
    example1:
      hash: [Worker2, hash]
  doctrine:
    example2:
      Article: ~
  models:
    Article: {events: [delete]}
  binlog: {concurrency: 16}
test:
  bogus_section: [not, checked]
dev:
`

func TestEnvMerge(t *testing.T) {
	c := mustParse(t, envYML, "prod", nil)
	eq(t, "Env", c.Env, "prod")
	// Lists replace; mappings merge key by key.
	eq(t, "Servers", c.Servers, map[string][]string{"default": {"10.1.0.1:4730", "10.1.0.2:4730"}, "backup": {"10.0.0.2:4730"}})
	eq(t, "Workers", c.Workers, map[string]WorkerSet{"example1": {"reverse": {"Worker1", "reverse"}, "hash": {"Worker2", "hash"}}})
	// ~ replaces a list.
	eq(t, "DBWorkers", c.DBWorkers, map[string]DBWorkerSet{"example2": {"Article": {AllEvents: true}}})
	eq(t, "Article", c.Models["Article"], Model{Table: "articles", Events: []string{"delete"}, Source: "trigger"})
	eq(t, "Binlog.ServerID", c.Binlog.ServerID, uint32(5))
	eq(t, "Binlog.Concurrency", c.Binlog.Concurrency, 16)

	for _, env := range []string{"", "all", "dev"} {
		c := mustParse(t, envYML, env, nil)
		eq(t, env+" Servers", c.Servers, map[string][]string{"default": {"10.0.0.1:4730"}, "backup": {"10.0.0.2:4730"}})
		eq(t, env+" Article", c.Models["Article"].Events, []string{"insert", "update"})
		eq(t, env+" DBWorkers", c.DBWorkers["example2"]["Article"].Jobs, []string{"publish"})
	}
	// The selected env section is checked like all:.
	_, err := parse(t, envYML, "test", nil)
	wantErr(t, err, "t.yml:28: test.bogus_section: unknown section")
}

func TestEnvOtherSectionsMustBeYAML(t *testing.T) {
	_, err := parse(t, "all:\n  namespace: x\nprod:\n  server: [\n", "", nil)
	wantErr(t, err, "t.yml:")
	_, err = parse(t, "all:\n  namespace: x\nprod:\n  a: 1\n  a: 2\n", "", nil)
	wantErr(t, err, "t.yml:5: prod.a: duplicate key (first at line 4)")
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"GM": "gm.example:4000", "EMPTY": "", "NS": "app"}
	c := mustParse(t, `all:
  namespace: ${NS}
  server:
    default: ${GM}
    b: ${UNSET:-b.example}
    c: ${EMPTY:-c.example}
    d: "${UNSET:-d}${EMPTY}.example"
    ${NOT_A_KEY}: 127.0.0.1
  database:
    dsn: "u:pa$$w$rd@tcp(${DBHOST:-db})/x"
prod:
  server:
    default: ${ONLY_IN_PROD}
`, "", vars)
	eq(t, "Namespace", c.Namespace, "app")
	eq(t, "default", c.Servers["default"], []string{"gm.example:4000"})
	eq(t, "b", c.Servers["b"], []string{"b.example:4730"})
	eq(t, "c", c.Servers["c"], []string{"c.example:4730"})
	eq(t, "d", c.Servers["d"], []string{"d.example:4730"})
	// Keys are names, not values: never expanded.
	eq(t, "key", c.Servers["${NOT_A_KEY}"], []string{"127.0.0.1:4730"})
	// $$ is a dollar; a $ not followed by { or $ stays as is.
	eq(t, "DSN", c.Database.DSN, "u:pa$w$rd@tcp(db)/x")
}

// Numbers, durations and booleans are read from their text, quoted or
// not, and after ${VAR} expansion (which leaves the tag of the text
// written).
func TestScalarsByText(t *testing.T) {
	vars := map[string]string{"N": "7", "ON": "true", "PORT": "4731", "D": "2s"}
	c := mustParse(t, `all:
  server:
    default: {host: gm, port: "4731"}
    other:
      host: gm
      port: ${PORT}
  binlog:
    server_id: "7"
    concurrency: ${N}
    batch: "${N}"
    ha: ${ON}
    stats_interval: ${D}
  models:
    A: {table: a, ordered: "false"}
  retry:
    default:
      attempts: ${N}
      backoff: ${D}
`, "", vars)
	eq(t, "Servers", c.Servers, map[string][]string{"default": {"gm:4731"}, "other": {"gm:4731"}})
	eq(t, "Binlog", c.Binlog, Binlog{ServerID: 7, Flavor: "mariadb", Position: "table", HA: true, Server: "default", Concurrency: 7, Batch: 7, StatsInterval: 2 * time.Second})
	eq(t, "Unordered", c.Models["A"].Unordered, true)
	eq(t, "Retry", c.Retry["default"], RetryPolicy{Attempts: 7, Backoff: 2 * time.Second, MaxBackoff: 5 * time.Minute})
}

func TestExpandValues(t *testing.T) {
	vars := map[string]string{"A": "x", "EMPTY": ""}
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"${A}", "x"},
		{"<${A}${A}>", "<xx>"},
		{"${EMPTY}", ""},
		{"${EMPTY:-d}", "d"},
		{"${UNSET:-d e}", "d e"},
		{"${A:-d}", "x"},
		{"$$", "$"},
		{"$${A}", "${A}"},
		{"pa$word", "pa$word"},
		{"end$", "end$"},
	}
	for _, tt := range tests {
		got, err := expand(tt.in, lookup(vars))
		if err != nil || got != tt.want {
			t.Errorf("expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for in, msg := range map[string]string{
		"${UNSET}":   "environment variable UNSET is not set",
		"${A":        "unterminated ${",
		"${1A}":      `bad variable name "1A"`,
		"${A-x}":     `bad variable name "A-x"`,
		"x${}":       `bad variable name ""`,
		"${A:-x}${B": "unterminated",
	} {
		if _, err := expand(in, lookup(vars)); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("expand(%q) error = %v, want %q", in, err, msg)
		}
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	c := mustParse(t, `base: &base
  server:
    default: gm1
  worker:
    w: &w
      reverse: [Worker1, reverse]
all:
  <<: *base
  worker:
    w: *w
    w2:
      <<: *w
      hash: [Worker1, hash]
`, "", nil)
	eq(t, "Servers", c.Servers["default"], []string{"gm1:4730"})
	eq(t, "w", c.Workers["w"], WorkerSet{"reverse": {"Worker1", "reverse"}})
	eq(t, "w2", c.Workers["w2"], WorkerSet{"reverse": {"Worker1", "reverse"}, "hash": {"Worker1", "hash"}})
}

func TestLookups(t *testing.T) {
	c := mustParse(t, `all:
  server:
    local: 10.0.0.9:4731
  worker:
    example1:
      reverse: [Worker1, reverse]
  models:
    Article: {table: articles}
    Comment: {table: comments}
  doctrine:
    example2:
      Article: [publish, ~]
  dbworker:
    example3:
      Article: [update, buildFeed]
      Tag: [tagCloud]
`, "", nil)
	addrs, err := c.ServerAddrs("local")
	eq(t, "local", addrs, []string{"10.0.0.9:4731"})
	eq(t, "err", err, nil)
	addrs, _ = c.ServerAddrs("")
	eq(t, "default", addrs, []string{DefaultServer})
	addrs[0] = "mutated"
	if again, _ := c.ServerAddrs(""); again[0] != DefaultServer {
		t.Error("ServerAddrs returned the config's own slice")
	}
	if _, err := c.ServerAddrs("nope"); !errors.Is(err, ErrUnknownServer) || !strings.Contains(err.Error(), `"nope" in t.yml (have default, local)`) {
		t.Errorf("ServerAddrs(nope) = %v", err)
	}

	ws, err := c.WorkerSet("example1")
	eq(t, "example1", ws, WorkerSet{"reverse": {"Worker1", "reverse"}})
	eq(t, "err", err, nil)
	eq(t, "Name", ws["reverse"].Name(), "Worker1.reverse")
	if _, err := c.WorkerSet("example2"); !errors.Is(err, ErrUnknownSet) {
		t.Errorf("WorkerSet(example2) = %v", err)
	}

	ds, err := c.DBWorkerSet("example2")
	eq(t, "example2", ds, DBWorkerSet{"Article": {AllEvents: true, Jobs: []string{"publish"}}})
	eq(t, "err", err, nil)
	if _, err := c.DBWorkerSet("example1"); !errors.Is(err, ErrUnknownSet) {
		t.Errorf("DBWorkerSet(example1) = %v", err)
	}
	// No --config: every model, every set's jobs, in one worker.
	all, err := c.DBWorkerSet("")
	eq(t, "all", all, DBWorkerSet{
		"Article": {AllEvents: true, Events: []string{"update"}, Jobs: []string{"publish", "buildFeed"}},
		"Comment": {AllEvents: true},
		"Tag":     {Jobs: []string{"tagCloud"}},
	})
	eq(t, "err", err, nil)
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want error %q, got nil", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error = %q\n      want %q", err, want)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name, yml, env, want string
	}{
		// Top level and environments.
		{"not a mapping", "- a\n", "", "t.yml:1: want a mapping of environments"},
		{"env not a mapping", "all: [1]\n", "", "t.yml:1: all: want a mapping of sections, got a list of 1"},
		{"section outside env", "server:\n  default: x\n", "", "t.yml:1: server: section must be under all: or an environment"},
		{"yaml syntax", "all:\n  server:\n    default: a: b\n", "", "t.yml:3: mapping values are not allowed in this context"},
		{"yaml unclosed list", "all:\n  server: [\n", "", "t.yml:2: did not find expected node content"},
		{"two documents", "all: {}\n---\nprod: {}\n", "", "t.yml:2: more than one YAML document"},
		{"duplicate key", "all:\n  namespace: a\n  namespace: b\n", "", "t.yml:3: all.namespace: duplicate key (first at line 2)"},
		{"unknown section", "all:\n  namespace: a\n  workers: {}\n", "", "t.yml:3: all.workers: unknown section (want one of naming, namespace, server, serializer"},
		{"unknown section in env", "all:\n  namespace: a\nprod:\n  bogus: 1\n", "prod", "t.yml:4: prod.bogus: unknown section"},
		{"section not a mapping", "all:\n  worker: [a]\n", "", "t.yml:2: all.worker: want a mapping, got a list of 1"},
		{"merge key not a mapping", "all:\n  <<: [1]\n", "", "t.yml:2: all.<<: want a mapping to merge, got a number"},

		// ${VAR}
		{"unset var", "all:\n  server:\n    default: ${ROWGEAR_NOPE}\n", "", "t.yml:3: all.server.default: environment variable ROWGEAR_NOPE is not set"},
		{"unset var in list", "all:\n  server:\n    default:\n      - a\n      - ${NOPE}:4730\n", "", "t.yml:5: all.server.default[1]: environment variable NOPE is not set"},
		{"unset var in env", "all:\n  namespace: a\nprod:\n  namespace: ${NOPE}\n", "prod", "t.yml:4: prod.namespace: environment variable NOPE is not set"},
		{"unterminated var", "all:\n  namespace: ${NS\n", "", "t.yml:2: all.namespace: unterminated ${"},

		// server
		{"server bad port", "all:\n  server:\n    default: gm:99999\n", "", `t.yml:3: all.server.default: want a port number 1-65535, got "99999"`},
		{"server empty list", "all:\n  server:\n    default: []\n", "", "t.yml:3: all.server.default: empty list of servers"},
		{"server map typo", "all:\n  server:\n    default: {host: gm, prot: 1}\n", "", "t.yml:3: all.server.default.prot: unknown key (want host, port)"},
		{"server map no host", "all:\n  server:\n    default:\n      port: 4730\n", "", "t.yml:4: all.server.default: missing host"},
		{"server map bad port", "all:\n  server:\n    default:\n      host: gm\n      port: http\n", "", `t.yml:5: all.server.default.port: want a port number 1-65535, got "http"`},
		{"server list item", "all:\n  server:\n    default:\n      - gm\n      - [gm2]\n", "", "t.yml:5: all.server.default[1]: want host:port or {host: h, port: p}, got a list of 1"},
		{"server ipv6 unbracketed", "all:\n  server:\n    default: ::1:4730\n", "", "t.yml:3: all.server.default: want host:port (IPv6 as [::1]:4730)"},
		{"server empty in comma list", "all:\n  server:\n    default: a,,b\n", "", "t.yml:3: all.server.default: want host:port, got an empty string"},

		// worker
		{"worker string", "all:\n  worker:\n    example1:\n      reverse: {Worker1: reverse}\n", "", "t.yml:4: all.worker.example1.reverse: want [Handler, method] or a callback name, got a mapping"},
		{"worker three items", "all:\n  worker:\n    example1:\n      reverse: [Worker1, reverse, x]\n", "", "t.yml:4: all.worker.example1.reverse: want [Handler, method], got a list of 3"},
		{"worker null item", "all:\n  worker:\n    example1:\n      reverse: [Worker1, ~]\n", "", "t.yml:4: all.worker.example1.reverse[1]: want [Handler, method], got ~ (null)"},
		{"worker null set", "all:\n  worker:\n    example1:\n", "", "t.yml:3: all.worker.example1: want function: [Handler, method] entries"},
		{"worker set list", "all:\n  worker:\n    example1: [a]\n", "", "t.yml:3: all.worker.example1: want a mapping, got a list of 1"},
		{"worker error in env", "all:\n  worker:\n    w:\n      a: [A, a]\nprod:\n  worker:\n    w:\n      b: {B: b}\n", "prod", "t.yml:8: prod.worker.w.b: want [Handler, method] or a callback name, got a mapping"},
		{"worker error in all seen from env", "all:\n  worker:\n    w:\n      a: {A: a}\nprod:\n  worker:\n    w:\n      b: [B, b]\n", "prod", "t.yml:4: all.worker.w.a: want [Handler, method] or a callback name, got a mapping"},

		// doctrine / dbworker
		{"doctrine string", "all:\n  doctrine:\n    example2:\n      Article: publish\n", "", "t.yml:4: all.doctrine.example2.Article: want ~ or a list of jobs (~ for all events), got a string"},
		{"doctrine empty list", "all:\n  doctrine:\n    example2:\n      Article: []\n", "", "t.yml:4: all.doctrine.example2.Article: empty list: write ~ for all events"},
		{"doctrine duplicate job", "all:\n  doctrine:\n    example2:\n      Article: [publish, ~, publish]\n", "", `t.yml:4: all.doctrine.example2.Article[2]: duplicate "publish"`},
		{"doctrine duplicate ~", "all:\n  doctrine:\n    example2:\n      Article:\n        - ~\n        - ~\n", "", "t.yml:6: all.doctrine.example2.Article[1]: duplicate ~"},
		{"doctrine duplicate event", "all:\n  dbworker:\n    s:\n      Article: [update, update]\n", "", `t.yml:4: all.dbworker.s.Article[1]: duplicate "update"`},
		{"doctrine bad job", "all:\n  doctrine:\n    example2:\n      Article: [publish-now]\n", "", `t.yml:4: all.doctrine.example2.Article[0]: want a job name, an event or ~, got "publish-now"`},
		{"doctrine bad model", "all:\n  doctrine:\n    example2:\n      my-model: ~\n", "", "t.yml:4: all.doctrine.example2.my-model: want a model name"},
		{"doctrine event not emitted", "all:\n  models:\n    Article: {table: a, events: [update]}\n  dbworker:\n    s:\n      Article: [insert]\n", "", "t.yml:6: all.dbworker.s.Article[0]: the model does not emit insert"},
		{"set in doctrine and dbworker", "all:\n  doctrine:\n    example2:\n      Article: ~\n  dbworker:\n    example2:\n      Article: ~\n", "", "t.yml:6: all.dbworker.example2: set also defined under doctrine: at line 3"},

		// namespace
		{"namespace dot", "all:\n  namespace: a.b\n", "", `t.yml:2: all.namespace: want letters, digits, _ or -, got "a.b"`},
		{"namespace list", "all:\n  namespace: [a]\n", "", "t.yml:2: all.namespace: want a name, got a list of 1"},

		// models
		{"model no table", "all:\n  models:\n    Article: {events: [update]}\n", "", "t.yml:3: all.models.Article: missing table"},
		{"model null", "all:\n  models:\n    Article:\n", "", "t.yml:3: all.models.Article: want {table: ...}, got ~ (null)"},
		{"model bad event", "all:\n  models:\n    Article:\n      table: a\n      events: [insert, upsert]\n", "", `t.yml:5: all.models.Article.events[1]: want insert, update or delete, got "upsert"`},
		{"model duplicate event", "all:\n  models:\n    Article: {table: a, events: [insert, insert]}\n", "", `t.yml:3: all.models.Article.events[1]: duplicate "insert"`},
		{"model events string", "all:\n  models:\n    Article: {table: a, events: insert}\n", "", "t.yml:3: all.models.Article.events: want a list of insert, update or delete, got a string"},
		{"model bad source", "all:\n  models:\n    Article: {table: a, source: cdc}\n", "", `t.yml:3: all.models.Article.source: want trigger or binlog, got "cdc"`},
		{"model bad table", "all:\n  models:\n    Article: {table: my table}\n", "", `t.yml:3: all.models.Article.table: want a name of letters, digits, _ or $ (at most 64), got "my table"`},
		{"model bad column", "all:\n  models:\n    Article: {table: a, columns: [id, \"x;y\"]}\n", "", `t.yml:3: all.models.Article.columns[1]: want a column name, got "x;y"`},
		{"model typo", "all:\n  models:\n    Article:\n      table: a\n      tabel: b\n", "", "t.yml:5: all.models.Article.tabel: unknown key (want table, schema, events, columns, source, ordered, snapshot)"},
		{"model bad name", "all:\n  models:\n    article-x: {table: a}\n", "", "t.yml:3: all.models.article-x: want a model name"},
		{"two models one table", "all:\n  models:\n    A: {table: t}\n    B: {table: t}\n", "", "t.yml:4: all.models.B.table: table t is already the table of model A"},

		// database
		{"database bad dsn", "all:\n  database:\n    dsn: root@127.0.0.1/db\n", "", "t.yml:3: all.database.dsn: want a go-sql-driver DSN"},
		{"database typo", "all:\n  database:\n    url: x\n", "", "t.yml:3: all.database.url: unknown key (want dsn, password_file)"},

		// binlog
		{"binlog flavor", "all:\n  binlog:\n    flavor: postgres\n", "", `t.yml:3: all.binlog.flavor: want mariadb or mysql, got "postgres"`},
		{"binlog server_id zero", "all:\n  binlog:\n    server_id: 0\n", "", `t.yml:3: all.binlog.server_id: want a replica server id 1-4294967295, got "0"`},
		{"binlog server_id big", "all:\n  binlog:\n    server_id: 4294967296\n", "", "t.yml:3: all.binlog.server_id: want a replica server id"},
		{"binlog position", "all:\n  binlog:\n    position: \"file:\"\n", "", `t.yml:3: all.binlog.position: want "table", "gtid", "file" or "file:PATH", got "file:"`},
		{"binlog server unknown", "all:\n  server:\n    a: gm\n  binlog:\n    server: b\n", "", `t.yml:5: all.binlog.server: unknown gearman connection "b"`},
		{"binlog concurrency", "all:\n  binlog:\n    concurrency: 0\n", "", `t.yml:3: all.binlog.concurrency: want a positive number of connections, got "0"`},
		{"binlog batch", "all:\n  binlog:\n    batch: 1001\n", "", `t.yml:3: all.binlog.batch: want the most events a job carries, 1 to 1000, got "1001"`},
		{"binlog stats_interval", "all:\n  binlog:\n    stats_interval: 10\n", "", `t.yml:3: all.binlog.stats_interval: want a positive duration such as 10s or 1m, got "10"`},
		{"binlog typo", "all:\n  binlog:\n    serverid: 3\n", "", "t.yml:3: all.binlog.serverid: unknown key"},
		{"binlog list value", "all:\n  binlog:\n    position: [table]\n", "", `t.yml:3: all.binlog.position: want "table", "gtid", "file" or "file:PATH", got a list of 1`},
		{"binlog typo with list", "all:\n  binlog:\n    serverid: [3]\n", "", "t.yml:3: all.binlog.serverid: unknown key (want server_id, flavor"},
		{"server map typo with list", "all:\n  server:\n    default: {host: h, prot: [1]}\n", "", "t.yml:3: all.server.default.prot: unknown key (want host, port)"},

		// triggers
		{"triggers mode", "all:\n  triggers:\n    mode: loose\n", "", `t.yml:3: all.triggers.mode: want strict or lenient or outbox, got "loose"`},
		{"triggers typo", "all:\n  triggers:\n    timeout: 1\n", "", "t.yml:3: all.triggers.timeout: unknown key (want mode, resend_after, poll, batch)"},
		{"triggers poll", "all:\n  triggers:\n    poll: 1ms\n", "", `t.yml:3: all.triggers.poll: want a duration of at least 10ms such as 1s, got "1ms"`},
		{"triggers batch", "all:\n  triggers:\n    batch: 0\n", "", `t.yml:3: all.triggers.batch: want the most events a job carries, 1 to 1000, got "0"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.yml, tt.env, nil)
			wantErr(t, err, tt.want)
		})
	}
}

func TestErrorFields(t *testing.T) {
	_, err := parse(t, "all:\n  worker:\n    example1:\n      reverse: {Worker1: reverse}\n", "", nil)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("want *Error, got %T %v", err, err)
	}
	eq(t, "Error", *e, Error{File: "t.yml", Line: 4, Key: "all.worker.example1.reverse", Msg: "want [Handler, method] or a callback name, got a mapping"})
	eq(t, "Error()", e.Error(), "t.yml:4: all.worker.example1.reverse: want [Handler, method] or a callback name, got a mapping")
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "gearman.yml"), "")
	if !errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrInvalid) {
		t.Fatalf("Load(missing) = %v, want a wrapped fs.ErrNotExist", err)
	}
}

func TestLoadNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gearman.yml")
	if err := os.WriteFile(path, []byte("all:\n  bogus: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, "")
	wantErr(t, err, path+":2: all.bogus: unknown section")
}

func TestMoreErrors(t *testing.T) {
	// Alias expansion is bounded (billion laughs).
	bomb := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	for i, prev := 'b', 'a'; i <= 'h'; i, prev = i+1, i {
		bomb += string(i) + ": &" + string(i) + " [" + strings.Repeat("*"+string(prev)+", ", 9) + "*" + string(prev) + "]\n"
	}
	_, err := parse(t, bomb, "", nil)
	wantErr(t, err, "too many nodes after alias expansion")

	_, err = parse(t, "all:\n  ? [a]\n  : b\n", "", nil)
	wantErr(t, err, "t.yml:2: all: a key must be a plain string")

	_, err = parse(t, "all:\n  worker:\n    w: {f: true}\n", "", nil)
	wantErr(t, err, "t.yml:3: all.worker.w.f: want [Handler, method] or a callback name, got a boolean")
	_, err = parse(t, "all:\n  binlog:\n    flavor: {a: 1}\n", "", nil)
	wantErr(t, err, "t.yml:3: all.binlog.flavor: want mariadb or mysql, got a mapping")

	// The yaml error is kept as the cause.
	_, err = Parse("", []byte("all: [\n"), "")
	var e *Error
	if !errors.As(err, &e) || e.Err == nil || errors.Unwrap(err) != e.Err {
		t.Fatalf("want *Error wrapping the yaml error, got %#v", err)
	}
	if !strings.HasPrefix(err.Error(), "line 1: ") {
		t.Errorf("without a file name: %q", err)
	}
}
