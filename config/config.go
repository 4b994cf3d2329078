// Package config loads gearman.yml: the sfGearmanPlugin format (server,
// worker, doctrine sections under all: and environment sections) plus
// rowgear's own sections (namespace, dbworker, models, database, binlog).
package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/rowgear/rowgear/events"
)

// DefaultServer is where the "default" connection points when gearman.yml
// does not name it, as in the seed.
const DefaultServer = "127.0.0.1:4730"

// DefaultNamespace prefixes the gearman function names of row events and
// record/table jobs: <namespace>.<Model>.<op|job>.
const DefaultNamespace = "rowgear"

// Config is one environment's view of gearman.yml: `all:` merged with the
// section named by the environment, as symfony merges them.
type Config struct {
	// File is the path the config was read from, for error messages.
	File string
	// workerAt is where each worker set's function stands ("file:line"),
	// by set and function: see WorkerAt.
	workerAt map[[2]string]string
	// Env is the environment section merged over `all:`; empty for `all:`
	// alone.
	Env string

	// Servers maps a connection name to its "host:port" addresses. It always
	// has "default".
	Servers map[string][]string

	// Workers maps a worker set name (--config=example1) to its functions.
	Workers map[string]WorkerSet

	// DBWorkers maps a set name (--config=example2) to its models; the seed's
	// `doctrine:` section and rowgear's `dbworker:` section both land here.
	DBWorkers map[string]DBWorkerSet

	// Namespace prefixes row-event and job function names
	// (<namespace>.<Model>.<op|job>). With naming: plugin it is always
	// DefaultNamespace, and gearman.yml's namespace is FunctionSuffix.
	Namespace string

	// Naming is NamingRowgear (default) or NamingPlugin (naming:).
	Naming string
	// FunctionSuffix is "@<namespace>" with naming: plugin and a namespace,
	// else empty: appended to every plain function, queue and job, as
	// sfGearmanPlugin does.
	FunctionSuffix string

	// Serializer picks the codec of each function (serializer:).
	Serializer Serializer

	// Notes are the places where rowgear reads gearman.yml differently from
	// sfGearmanPlugin; a command prints them at start.
	Notes []Note

	// Models is the one source of truth for what each table emits.
	Models map[string]Model

	Database Database
	Binlog   Binlog
	Triggers Triggers

	// Retry maps "default", a function name, a Model or a Model.job (or
	// Model.op) to the retry policy of its failing jobs.
	Retry map[string]RetryPolicy
}

// WorkerSet maps a gearman function name to the handler that runs it.
type WorkerSet map[string]HandlerRef

// HandlerRef is the seed's [Handler, method] pair, e.g. [Worker1, reverse];
// Go code registers the handler under "Worker1.reverse". The plugin's
// callback string ("reverse", or "Worker1::reverse") has an empty Type
// and the name itself (or Type and Method).
type HandlerRef struct {
	Type   string
	Method string
}

// WorkerAt is where function fn of worker set set stands in the file
// ("file:line"), for the start-up checks' errors; "" when unknown.
func (c *Config) WorkerAt(set, fn string) string { return c.workerAt[[2]string{set, fn}] }

// Name is the registration name, "Type.method", or "method" alone.
func (h HandlerRef) Name() string {
	if h.Type == "" {
		return h.Method
	}
	return h.Type + "." + h.Method
}

// DBWorkerSet maps a model name to what a dbworker set runs for it.
type DBWorkerSet map[string]ModelJobs

// ModelJobs is the value of `Model: ~` or `Model: [publish, ~]`.
type ModelJobs struct {
	// AllEvents is set by `~` alone or by a `~` in the list: every event the
	// model declares.
	AllEvents bool
	// Events lists events named explicitly in the list (insert, update,
	// delete), a rowgear extension.
	Events []string
	// Jobs lists custom record and table jobs, in config order.
	Jobs []string
}

// Model says which table a model maps to and which row events it emits: the
// seed's `actAs: Gearmanable: {events: [...]}`.
type Model struct {
	Table  string
	Schema string // empty: the database of Database.DSN
	// Events the table emits: insert, update, delete. Default: all three.
	Events []string
	// Columns limits the row image and `modified` to these columns; empty
	// means every column.
	Columns []string
	// Source is "trigger" (default) or "binlog".
	Source string
	// Unordered: `ordered: false`, the model's events skip the per-row
	// ordering of package ordering (they still pass the commit gate).
	Unordered bool
	// SnapshotAs is how binlogbridge publishes the rows a snapshot reads:
	// "snapshot" (default, op snapshot to <Model>.snapshot) or "insert" (op
	// insert to <Model>.insert, every column modified, so TriggerInsert
	// handles them).
	SnapshotAs string
}

// Database is where models live.
type Database struct {
	// DSN in go-sql-driver/mysql form: user:pass@tcp(host:port)/db. With
	// PasswordFile, the password read from it (never written in the file
	// or on a command line, where `ps` shows it).
	DSN string `yaml:"dsn"`
	// PasswordFile is database.password_file, else the environment's
	// ROWGEAR_DB_PASSWORD_FILE: a file holding the password (a trailing
	// newline is dropped), read when the config is loaded.
	PasswordFile string `yaml:"password_file"`

	password string // read from PasswordFile
}

// WithPassword returns dsn with the password of PasswordFile when dsn has
// none (a --dsn flag, say); dsn unchanged otherwise.
func (d Database) WithPassword(dsn string) (string, error) {
	if d.PasswordFile == "" || dsn == "" {
		return dsn, nil
	}
	mc, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", fmt.Errorf("config: DSN: %w", err)
	}
	if mc.Passwd != "" {
		return dsn, nil
	}
	mc.Passwd = d.password
	return mc.FormatDSN(), nil
}

// Binlog configures binlogbridge.
type Binlog struct {
	ServerID uint32 `yaml:"server_id"` // unique among the server's replicas; default 1001
	Flavor   string `yaml:"flavor"`    // "mariadb" (default) or "mysql"
	// Position is where the bridge keeps its position and how it names
	// events: "table" (default: a table in the source database; events
	// identified by GTID on MariaDB, so that the bridge can follow a
	// failover to a replica, by file position on MySQL), "gtid" (the
	// table, GTIDs always: MariaDB only), "file" (the table, file
	// positions, as before GTIDs were the default) or "file:PATH" (a JSON
	// file, file positions). See package bridge.
	Position string `yaml:"position"`
	// HA lets several bridges of one source run, one active, the others
	// standing by (a lease in the source database; package bridge).
	HA bool `yaml:"ha"`
	// LeaseTTL is the HA lease's time to live; default 3 s.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// Server is the gearman connection name the bridge publishes to.
	Server string `yaml:"server"`
	// Concurrency is the number of gearman connections submitting; default 8.
	Concurrency int `yaml:"concurrency"`
	// Batch is the most consecutive events of one model a job may carry
	// (<namespace>.<Model>.batch); default 1, one job per event. See
	// package bridge, Batches.
	Batch int `yaml:"batch"`
	// StatsInterval is how often the bridge logs position, lag and rate.
	StatsInterval time.Duration `yaml:"stats_interval"`
}

// Triggers configures the generated triggers and the UDF they call.
type Triggers struct {
	// Mode is "outbox" (default: the event is written into the
	// commit-gate row in the writer's transaction and the workers' relay
	// publishes it until it is handled: no write waits for gearmand or is
	// refused for it, and nothing is lost when gearmand is), or one of the
	// wave-2 modes, where the trigger submits through the UDF and waits for
	// gearmand: "strict" (a write fails when its job cannot be submitted)
	// or "lenient" (the write goes through; its event is lost, counted and
	// logged).
	Mode string `yaml:"mode"`
	// ResendAfter (outbox) is how long a published event waits for its
	// handler before the relay sends it again; 0: 30 s.
	ResendAfter time.Duration `yaml:"resend_after"`
	// Poll (outbox) is how often the relay looks for events without a
	// doorbell; 0: 1 s.
	Poll time.Duration `yaml:"poll"`
	// Batch (outbox) is the most consecutive events of one model the relay
	// sends as one <namespace>.<Model>.batch job; 0 or 1: one job per
	// event (what a PHP worker takes).
	Batch int `yaml:"batch"`
}

// RetryPolicy says how a failing job is retried before it goes to the
// dead-letter table.
type RetryPolicy struct {
	Attempts   int           `yaml:"attempts"`    // runs in all, the first included
	Backoff    time.Duration `yaml:"backoff"`     // wait before the 2nd run; doubles each time, with jitter
	MaxBackoff time.Duration `yaml:"max_backoff"` // cap of the wait
	Timeout    time.Duration `yaml:"timeout"`     // a run's context is cancelled after this; 0: none
}

// DefaultRetry rides out a database restart or a brief outage: runs after
// about 1, 2, 4 and 8 seconds, then dead letter.
var DefaultRetry = RetryPolicy{Attempts: 5, Backoff: time.Second, MaxBackoff: 5 * time.Minute}

// RetryFor returns the policy of a gearman function: the most specific of
// "Model.job", "Model" (for <namespace>.<Model>.<job>) or the function
// name itself, else "default". A model's batch function
// (<namespace>.<Model>.batch) has no timeout: each of its events runs under
// its own function's.
func (c *Config) RetryFor(function string) RetryPolicy {
	p := c.retryFor(function)
	if rest, ok := strings.CutPrefix(function, c.Namespace+"."); ok {
		if _, op, _ := strings.Cut(rest, "."); op == events.OpBatch {
			p.Timeout = 0
		}
	}
	return p
}

func (c *Config) retryFor(function string) RetryPolicy {
	var keys []string
	if rest, ok := strings.CutPrefix(function, c.Namespace+"."); ok {
		model, _, _ := strings.Cut(rest, ".")
		keys = append(keys, rest, model)
	}
	keys = append(keys, function)
	for _, k := range keys {
		if p, ok := c.Retry[k]; ok {
			return p
		}
	}
	if p, ok := c.Retry["default"]; ok {
		return p
	}
	return DefaultRetry
}
