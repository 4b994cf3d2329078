package dispatch

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/rowmap"
	"github.com/rowgear/rowgear/internal/sqlschema"
)

// Record is embedded in every model struct. The dispatcher fills it before
// calling a handler, giving the seed's refresh() and getGearmanJob().
type Record struct {
	st *recState
}

type recState struct {
	src   *source
	self  reflect.Value // *T
	job   *gearman.Job
	event *events.Envelope
}

// source is where a mounted model's rows live.
type source struct {
	db         *sql.DB
	table      string // quoted, possibly schema-qualified
	schemaName string // unquoted; empty: the connection's database
	tableName  string
	cols       []rowmap.Column
	where      string // "`id`=? AND …"
	pkIdx      [][]int

	mu    sync.Mutex
	query string // the SELECT of load, built from the live schema on first use
}

// GearmanJob returns the job being run: fail it by returning an error, send
// data or status through it.
func (r *Record) GearmanJob() *gearman.Job {
	if r.st == nil {
		return nil
	}
	return r.st.job
}

// DB returns the database the record lives in.
func (r *Record) DB() *sql.DB {
	if r.st == nil || r.st.src == nil {
		return nil
	}
	return r.st.src.db
}

// Event returns the row event being handled, nil in a record job.
func (r *Record) Event() *events.Envelope {
	if r.st == nil {
		return nil
	}
	return r.st.event
}

// Refresh reloads the record from the database by its primary key. The
// event travelled through gearmand: the row may have changed since, or be
// gone, in which case Refresh returns an error matching ErrNotFound. It is
// a locking read: it waits for a writer still committing the row.
func (r *Record) Refresh(ctx context.Context) error {
	if r.st == nil || r.st.src == nil || r.st.src.db == nil {
		return errors.New("dispatch: Refresh on a record the dispatcher did not load (no database)")
	}
	return r.st.src.load(ctx, r.st.self)
}

// load selects the row whose key is in rec's pk fields into rec. The
// server renders each column in its event form (the expressions the
// triggers use), and events.Row.Scan converts them: a field loads from the
// database exactly as it decodes from an event. On any error rec is left
// as it was.
func (s *source) load(ctx context.Context, rec reflect.Value) error {
	el := rec.Elem()
	args := make([]any, len(s.pkIdx))
	for i, idx := range s.pkIdx {
		args[i] = el.FieldByIndex(idx).Interface()
	}
	var obj []byte
	for retry := true; ; retry = false {
		q, err := s.selectQuery(ctx)
		if err != nil {
			return err
		}
		err = s.db.QueryRowContext(ctx, q, args...).Scan(&obj)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %s where %v", ErrNotFound, s.table, args)
		}
		var me *mysql.MySQLError
		if retry && errors.As(err, &me) && me.Number == 1054 { // unknown column: the table changed
			s.mu.Lock()
			s.query = ""
			s.mu.Unlock()
			continue
		}
		if err != nil {
			return fmt.Errorf("dispatch: load from %s: %w", s.table, err)
		}
		break
	}
	var compact bytes.Buffer
	var row events.Row
	if err := json.Compact(&compact, obj); err != nil {
		return fmt.Errorf("dispatch: load from %s: %w", s.table, err)
	}
	if err := json.Unmarshal(compact.Bytes(), &row); err != nil {
		return fmt.Errorf("dispatch: load from %s: %w", s.table, err)
	}
	tmp := reflect.New(el.Type())
	if err := row.Scan(tmp.Interface()); err != nil {
		return fmt.Errorf("dispatch: load from %s: %w", s.table, err)
	}
	for _, c := range s.cols {
		el.FieldByIndex(c.Index).Set(tmp.Elem().FieldByIndex(c.Index))
	}
	return nil
}

// selectQuery is SELECT JSON_OBJECT('col', <col in event form>, …) of the
// row by primary key.
func (s *source) selectQuery(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.query != "" {
		return s.query, nil
	}
	t, err := sqlschema.LoadTable(ctx, s.db, s.schemaName, s.tableName)
	if err != nil {
		return "", fmt.Errorf("dispatch: load from %s: %w", s.table, err)
	}
	names := make([]string, len(s.cols))
	for i, c := range s.cols {
		names[i] = c.Name
	}
	obj, err := sqlschema.RowSQL(t, names)
	if err != nil {
		return "", fmt.Errorf("dispatch: load from %s: %w", s.table, err)
	}
	// A locking read waits for a writer still committing the row: MariaDB
	// sends a transaction's binlog events before InnoDB has made its commit
	// visible, so a binlog event's handler could Refresh a row its own
	// insert had not yet shown to a plain read (ErrNotFound, a false ghost).
	// Autocommit: the shared lock ends with the statement.
	s.query = "SELECT " + obj + " FROM " + s.table + " WHERE " + s.where + " LOCK IN SHARE MODE"
	return s.query, nil
}

func newSource(db *sql.DB, schema, table string, cols []rowmap.Column) *source {
	s := &source{db: db, cols: cols, table: quote(table), schemaName: schema, tableName: table}
	if schema != "" {
		s.table = quote(schema) + "." + s.table
	}
	var conds []string
	for _, c := range cols {
		if c.PK {
			conds = append(conds, quote(c.Name)+" = ?")
			s.pkIdx = append(s.pkIdx, c.Index)
		}
	}
	s.where = strings.Join(conds, " AND ")
	return s
}

func quote(id string) string { return "`" + strings.ReplaceAll(id, "`", "``") + "`" }

// Table is embedded in a model's table type (ArticleTable), the seed's
// Doctrine_Table: table jobs reach the database and their job through it.
type Table struct {
	st *tableState
}

type tableState struct {
	db    *sql.DB
	model string
	table string // quoted, possibly schema-qualified
	job   *gearman.Job
}

// DB returns the database the model lives in.
func (t *Table) DB() *sql.DB {
	if t.st == nil {
		return nil
	}
	return t.st.db
}

// Name returns the model's table name, quoted for SQL (and qualified by its
// schema when the config names one).
func (t *Table) Name() string {
	if t.st == nil {
		return ""
	}
	return t.st.table
}

// Model returns the model name.
func (t *Table) Model() string {
	if t.st == nil {
		return ""
	}
	return t.st.model
}

// GearmanJob returns the job being run.
func (t *Table) GearmanJob() *gearman.Job {
	if t.st == nil {
		return nil
	}
	return t.st.job
}

// OpenDB opens dsn (go-sql-driver/mysql form) the way Refresh needs it:
// DATETIME and TIMESTAMP scan into time.Time in UTC, as the events carry
// them.
func OpenDB(dsn string) (*sql.DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("dispatch: database dsn: %w", err)
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("dispatch: database dsn: %w", err)
	}
	return sql.OpenDB(c), nil
}
