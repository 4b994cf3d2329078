package bridge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	gomysql "github.com/go-sql-driver/mysql"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/gearman"
)

var (
	// ErrConfig: the configuration cannot run a bridge.
	ErrConfig = errors.New("bridge: bad configuration")
	// ErrStart: a bad --start value.
	ErrStart = errors.New("bridge: bad start position")
	// ErrStore: the position could not be loaded or saved.
	ErrStore = errors.New("bridge: position store")
	// ErrBinlogGone: the server no longer has the binlog the saved position
	// points into (MariaDB/MySQL error 1236: purged, or RESET MASTER, or
	// another server). Retrying cannot help; Run returns it with what to do.
	ErrBinlogGone = errors.New("bridge: the saved binlog position is gone from the server")
	// errFatal marks stream errors a restart cannot fix (a bad GTID set, a
	// rows event type go-mysql does not decode): Run returns them.
	errFatal = errors.New("bridge: fatal")
	// errPoison marks a row change the bridge cannot publish (a value that
	// does not encode, a row its TABLE_MAP cannot label): it becomes a dead
	// letter and the stream goes on.
	errPoison = errors.New("bridge: cannot publish this row change")
	// errNoKey: the row's table has no primary key; its changes are
	// skipped, counted (docs/binlog-bridge.md#bad-rows).
	errNoKey = errors.New("bridge: no primary key")
	// errTransient: a lookup failed for a reason a retry may fix (the
	// database is away): the stream restarts from the last transaction.
	errTransient = errors.New("bridge: transient")
)

// Bridge tails the binlog and publishes row changes as gearman jobs.
type Bridge struct {
	cfg       *config.Config
	namespace string
	models    map[string][]*model // by "schema.table"
	dsn       *gomysql.Config
	db        *sql.DB
	store     Store
	servers   []string

	log          *slog.Logger
	verbose      bool
	allModels    bool
	start        *Position
	concurrency  int
	batch        int
	saveInterval time.Duration
	flushTimeout time.Duration
	stats        time.Duration
	dsnOverride  string
	client       *gearman.Client

	tracker   *tracker
	subs      *submitters
	handler   *handler
	snaps     *snapshots
	signalKey string // "schema.rowgear_snapshots": watched for requests and watermarks
	sourceID  uint32 // @@server_id of the source server, part of event ids
	history   string // Position.History of this run, part of event ids

	collations map[uint64]string // the server's collation ids → character set names
	rejected   rejected
	keyless    []string // published tables without a primary key, found at start-up

	observer     Observer
	heartbeat    time.Duration
	heartbeatSet bool
	stallAfter   time.Duration
	obs          obs

	ha       bool          // binlog.ha: run only while holding the lease (lease.go)
	leaseTTL time.Duration // binlog.lease_ttl
	instance string        // this bridge's name in the lease
	lease    *lease        // held while active, else nil
	standing atomic.Bool   // waiting for the lease: healthy, not streaming
	posMode  string        // what binlog.position asks for: modeAuto, modeGTID or modeFile (gtid.go)
	gtidMode bool          // this run identifies events by GTID (gtid.go)
	switchAt *Position     // file positions until here, then GTID positions (gtid.go); nil: no switch pending
	saveMu   sync.Mutex    // one position save at a time: the switch to GTID and saveLoop
	gt       gtidTrx       // the transaction being read, GTID mode
	hosts    hostSet       // the DSN's hosts when it lists several (gtid.go)
	lostMu   sync.Mutex
	lost     []string // GTID ranges lost in source failovers
}

// Option configures a Bridge. It checks its value: New returns a bad
// option's error (ErrConfig, naming the option).
type Option func(*Bridge) error

// check is an option that sets what set sets when ok, and else is the
// error naming it, its value v and what it wants.
func check(name string, v any, ok bool, want string, set func(*Bridge)) Option {
	return func(b *Bridge) error {
		if !ok {
			return fmt.Errorf("%w: %s(%v): want %s", ErrConfig, name, v, want)
		}
		set(b)
		return nil
	}
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return check("WithLogger", l, l != nil, "a logger", func(b *Bridge) { b.log = l })
}

// WithVerbose logs every published event.
func WithVerbose(v bool) Option { return func(b *Bridge) error { b.verbose = v; return nil } }

// WithAllModels publishes every configured model, whatever its source
// (tests, benchmarks, a table moving from triggers to the binlog).
func WithAllModels(v bool) Option { return func(b *Bridge) error { b.allModels = v; return nil } }

// WithDSN replaces database.dsn.
func WithDSN(dsn string) Option {
	return check("WithDSN", `""`, dsn != "", "a DSN", func(b *Bridge) { b.dsnOverride = dsn })
}

// WithStart sets where the first run starts when no position was saved;
// nil (the default) is the current end of the binlog. See ParseStart.
func WithStart(p *Position) Option { return func(b *Bridge) error { b.start = p; return nil } }

// WithConcurrency replaces binlog.concurrency: the number of gearman
// connections, and of submit queues (1 or more).
func WithConcurrency(n int) Option {
	return check("WithConcurrency", n, n >= 1, "1 or more connections", func(b *Bridge) { b.concurrency = n })
}

// WithBatch replaces binlog.batch: the most consecutive events of one model
// a job carries (1 to events.MaxBatch; see docs/binlog-bridge.md#batches).
func WithBatch(n int) Option {
	return check("WithBatch", n, n >= 1 && n <= events.MaxBatch, fmt.Sprintf("1 to %d events per job", events.MaxBatch), func(b *Bridge) { b.batch = n })
}

// WithSaveInterval sets how often the handled position is saved
// (default 1 s).
func WithSaveInterval(d time.Duration) Option {
	return check("WithSaveInterval", d, d > 0, "a positive interval", func(b *Bridge) { b.saveInterval = d })
}

// WithFlushTimeout bounds how long Run waits, once its context ends, for
// the workers to handle the jobs already read (default 20 s; 0: not at
// all). What is not handled then is published again by the next run.
func WithFlushTimeout(d time.Duration) Option {
	return check("WithFlushTimeout", d, d >= 0, "0 or more", func(b *Bridge) { b.flushTimeout = d })
}

// WithStore replaces the store binlog.position names.
func WithStore(s Store) Option {
	return check("WithStore", s, s != nil, "a store", func(b *Bridge) { b.store = s })
}

// New checks the configuration and opens the database; it does not start
// streaming. cfg.Binlog and cfg.Models say what to publish.
func New(ctx context.Context, cfg *config.Config, opts ...Option) (*Bridge, error) {
	b := &Bridge{cfg: cfg, namespace: cfg.Namespace, log: slog.Default(), concurrency: cfg.Binlog.Concurrency, batch: max(cfg.Binlog.Batch, 1),
		saveInterval: time.Second, flushTimeout: 20 * time.Second, stats: cfg.Binlog.StatsInterval,
		ha: cfg.Binlog.HA, leaseTTL: cfg.Binlog.LeaseTTL, posMode: positionMode(cfg.Binlog.Position)}
	for _, o := range opts {
		if err := o(b); err != nil {
			return nil, err
		}
	}
	if b.leaseTTL <= 0 {
		b.leaseTTL = DefaultLeaseTTL
	}
	if !b.heartbeatSet {
		b.heartbeat = 250 * time.Millisecond
	}
	if b.stallAfter <= 0 {
		b.stallAfter = 30 * time.Second
	}
	if b.namespace == "" {
		b.namespace = config.DefaultNamespace
	}
	if b.concurrency < 1 {
		b.concurrency = 8
	}
	if b.batch < 1 || b.batch > events.MaxBatch {
		return nil, fmt.Errorf("%w: batch %d: want 1 to %d events per job", ErrConfig, b.batch, events.MaxBatch)
	}
	rawDSN := cfg.Database.DSN
	if b.dsnOverride != "" {
		// A --dsn without a password takes database.password_file's.
		var err error
		if rawDSN, err = cfg.Database.WithPassword(b.dsnOverride); err != nil {
			return nil, fmt.Errorf("%w: --dsn: %w", ErrConfig, err)
		}
	}
	rawDSN, b.hosts.all = splitHosts(rawDSN)
	dsn, err := gomysql.ParseDSN(rawDSN)
	if err != nil {
		return nil, fmt.Errorf("%w: database dsn: %w", ErrConfig, err)
	}
	b.dsn = dsn
	if err := b.selectModels(); err != nil {
		return nil, err
	}
	b.snaps = newSnapshots(b)
	if dsn.DBName != "" {
		b.signalKey = dsn.DBName + "." + SnapshotTable
	}
	server := cfg.Binlog.Server
	if server == "" {
		server = "default"
	}
	if b.servers, err = cfg.ServerAddrs(server); err != nil {
		return nil, fmt.Errorf("%w: binlog.server: %w", ErrConfig, err)
	}
	plain := dsn.Clone()
	plain.ParseTime, plain.MultiStatements = false, false
	b.useHosts(plain)
	if b.db, err = sql.Open("mysql", plain.FormatDSN()); err != nil {
		return nil, fmt.Errorf("%w: database dsn: %w", ErrConfig, err)
	}
	if b.store == nil {
		if b.store, err = b.openStore(ctx); err != nil {
			b.db.Close()
			return nil, err
		}
	}
	return b, nil
}

func (b *Bridge) selectModels() error {
	b.models = map[string][]*model{}
	names := make([]string, 0, len(b.cfg.Models))
	for name := range b.cfg.Models {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		mc := b.cfg.Models[name]
		if mc.Source != "binlog" && !b.allModels {
			continue
		}
		m, err := b.newModel(name)
		if err != nil {
			return err
		}
		key := m.schema + "." + m.table
		b.models[key] = append(b.models[key], m)
	}
	if len(b.models) == 0 && len(b.cfg.Models) == 0 {
		return fmt.Errorf("%w: no models in the models section", ErrConfig)
	}
	return nil
}

// newModel is what the bridge publishes of the configured model name.
func (b *Bridge) newModel(name string) (*model, error) {
	mc, ok := b.cfg.Models[name]
	if !ok {
		return nil, fmt.Errorf("%w: no model %s in the models section", ErrConfig, name)
	}
	m := &model{name: name, schema: mc.Schema, table: mc.Table, events: map[string]bool{}, snapshotAs: events.OpSnapshot}
	if mc.SnapshotAs == events.OpInsert {
		m.snapshotAs = events.OpInsert
	}
	if m.schema == "" {
		m.schema = b.dsn.DBName
	}
	if m.schema == "" || m.table == "" {
		return nil, fmt.Errorf("%w: model %s: no schema (set it, or a database in the DSN) or no table", ErrConfig, name)
	}
	evs := mc.Events
	if len(evs) == 0 {
		evs = []string{"insert", "update", "delete"}
	}
	for _, e := range evs {
		m.events[e] = true
	}
	if len(mc.Columns) > 0 {
		m.columns = map[string]bool{}
		for _, c := range mc.Columns {
			m.columns[c] = true
		}
	}
	return m, nil
}

func (b *Bridge) openStore(ctx context.Context) (Store, error) {
	where := b.cfg.Binlog.Position
	if path, ok := strings.CutPrefix(where, "file:"); ok {
		return FileStore{Path: path}, nil
	}
	if where != "" && where != "table" && where != "gtid" && where != "file" {
		return nil, fmt.Errorf("%w: binlog.position %q", ErrConfig, where)
	}
	if b.dsn.DBName == "" {
		return nil, fmt.Errorf("%w: the position table needs a database in the DSN (or use binlog.position file:PATH)", ErrConfig)
	}
	return NewTableStore(ctx, b.db, b.serverID())
}

func (b *Bridge) serverID() uint32 {
	if b.cfg.Binlog.ServerID == 0 {
		return 1001
	}
	return b.cfg.Binlog.ServerID
}

func (b *Bridge) flavor() string {
	if b.cfg.Binlog.Flavor == "mysql" {
		return mysql.MySQLFlavor
	}
	return mysql.MariaDBFlavor
}

// Tables returns the anchored patterns of the published tables, one per
// table (for logs).
func (b *Bridge) Tables() []string {
	var out []string
	for _, ms := range b.models {
		out = append(out, "^"+regexp.QuoteMeta(ms[0].schema)+`\.`+regexp.QuoteMeta(ms[0].table)+"$")
	}
	sort.Strings(out)
	return out
}

// Close releases the database handle.
func (b *Bridge) Close() error { return b.db.Close() }

// Stats is a snapshot of a running bridge.
type Stats struct {
	Published int64 // events accepted by gearmand (JOB_CREATED) since Run started, each counted once
	Handled   int64 // events whose job a worker answered since Run started
	// Failed: of Handled, events whose job the worker failed (WORK_FAIL
	// with its message: under rowgear's retry guard, stored as a retry or
	// a dead letter).
	Failed int64
	// Resent: jobs submitted again because their result was lost (gearmand
	// or the connection went away) or gearmand failed them on its own.
	Resent   int64
	InFlight int64    // events read, not yet handled
	Position Position // handled position (what a restart resumes from)
	// Servers is each gearmand as the bridge's client last found it.
	Servers []gearman.ServerStatus
	// DeadLettered: row changes the bridge could not publish, stored as
	// dead letters (rowgear_failed_jobs) instead.
	DeadLettered int64
	// SkippedNoKey: row changes of tables without a primary key, skipped.
	SkippedNoKey int64
	// Keyless: published tables ("schema.table") without a primary key,
	// as found at start-up.
	Keyless []string
}

// Stats returns counters of the current Run.
func (b *Bridge) Stats() Stats {
	if b.subs == nil || b.tracker == nil {
		// Starting: what start-up found is known before the stream runs.
		return Stats{Keyless: b.keyless}
	}
	p, _, _ := b.tracker.advance()
	return Stats{Published: b.subs.published.Load(), Handled: b.subs.handled.Load(), Failed: b.subs.failed.Load(),
		Resent: b.subs.resent.Load(), InFlight: b.subs.inflight.Load(), Position: p,
		Servers: b.client.Servers(), DeadLettered: b.rejected.dead.Load(), SkippedNoKey: b.rejected.noKey.Load(),
		Keyless: b.keyless}
}

const (
	heartbeatPeriod = 10 * time.Second
	readTimeout     = 35 * time.Second
	// eventCache is how many decoded binlog events the replication client
	// reads ahead of the handler. go-mysql's default, 10,240, let one
	// 1,000,000-row UPDATE hold ≈10,000 decoded rows events (≈65 rows
	// each) at once: the bridge grew past 600 MB (bench section 7). The
	// submit queues behind the handler hold thousands of jobs already.
	eventCache = 256
)

var timeUTC = time.UTC

// replicationLogger is go-mysql's logger: its info chatter (connects,
// rotates) only with --verbose.
func (b *Bridge) replicationLogger() *slog.Logger {
	return slog.New(verboseOnly{b.log.Handler().WithAttrs([]slog.Attr{slog.String("component", "binlog")}), b.verbose})
}

// verboseOnly keeps go-mysql's info chatter for --verbose, writes errors as
// their one-line text (slog's text handler would print traced errors with
// their stack), and drops go-mysql's report of ERROR 1236 and the failed
// kill after it: Run reports that itself, once.
type verboseOnly struct {
	slog.Handler
	verbose bool
}

func (h verboseOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return (h.verbose || l >= slog.LevelWarn) && h.Handler.Enabled(ctx, l)
}

func (h verboseOnly) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	drop := false
	r.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok {
			var me *mysql.MyError
			if errors.As(err, &me) && (me.Code == mysql.ER_MASTER_FATAL_ERROR_READING_BINLOG ||
				me.Code == mysql.ER_NO_SUCH_THREAD) {
				drop = true
			}
			a = slog.String(a.Key, strings.ReplaceAll(err.Error(), "\n", " "))
		}
		out.AddAttrs(a)
		return true
	})
	if drop && !h.verbose {
		return nil
	}
	return h.Handler.Handle(ctx, out)
}

func (h verboseOnly) WithAttrs(as []slog.Attr) slog.Handler {
	return verboseOnly{h.Handler.WithAttrs(as), h.verbose}
}

func (h verboseOnly) WithGroup(n string) slog.Handler {
	return verboseOnly{h.Handler.WithGroup(n), h.verbose}
}
