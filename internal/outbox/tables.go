package outbox

import (
	"context"
	"database/sql"
	"strings"
)

// tables are the relay's gate tables, each once: Options.Tables may name
// one table twice, unqualified (the connection's database) and qualified
// by a model's schema. Two names of one table share its cursor row, so
// the relay took turns with itself: every other compare-and-set failed,
// and each drain read the cursor and the rows again. Resolved at the
// first drain or sweep that reaches the database.
func (r *Relay) tables(ctx context.Context) ([]string, error) {
	r.tmu.Lock()
	defer r.tmu.Unlock()
	if r.distinct != nil {
		return r.distinct, nil
	}
	var db sql.NullString
	if err := r.db.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&db); err != nil {
		return nil, err
	}
	r.distinct = distinctTables(r.o.Tables, db.String)
	if len(r.distinct) < len(r.o.Tables) {
		r.o.Logger.Debug("outbox relay: gate tables named twice are relayed once", "tables", r.o.Tables, "relayed", r.distinct)
	}
	return r.distinct, nil
}

// distinctTables keeps the first name of each table of ts, an
// unqualified name being db's table ("": no default database, so only
// an equal name is the same).
func distinctTables(ts []string, db string) []string {
	seen := map[[2]string]bool{}
	var out []string
	for _, t := range ts {
		schema, name, ok := splitQualified(t)
		if !ok {
			schema, name = db, unquote(t)
		}
		if id := [2]string{schema, name}; !seen[id] {
			seen[id] = true
			out = append(out, t)
		}
	}
	return out
}

// splitQualified splits schema.table at its dot outside backquotes, and
// unquotes both parts; ok is false for an unqualified name.
func splitQualified(t string) (schema, name string, ok bool) {
	quoted := false
	for i := 0; i < len(t); i++ {
		switch {
		case t[i] == '`':
			quoted = !quoted // a doubled backquote toggles twice
		case t[i] == '.' && !quoted:
			return unquote(t[:i]), unquote(t[i+1:]), true
		}
	}
	return "", "", false
}

// unquote undoes sqlschema.QuoteIdent; a bare identifier stays as it is.
func unquote(id string) string {
	if len(id) >= 2 && id[0] == '`' && id[len(id)-1] == '`' {
		return strings.ReplaceAll(id[1:len(id)-1], "``", "`")
	}
	return id
}
