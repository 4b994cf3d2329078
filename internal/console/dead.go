package console

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/funcname"
	"github.com/rowgear/rowgear/internal/retryguard"
)

const pageSize = 50

// filterOf reads the dead-letter filter of a query or form.
func filterOf(v url.Values) (retryguard.Filter, error) {
	f := retryguard.Filter{Function: strings.TrimSpace(v.Get("function")), Model: strings.TrimSpace(v.Get("model")), Error: strings.TrimSpace(v.Get("error"))}
	var err error
	if f.Since, err = timeOf(v.Get("since"), "since"); err != nil {
		return f, err
	}
	if f.Until, err = timeOf(v.Get("until"), "until"); err != nil {
		return f, err
	}
	return f, nil
}

// timeOf parses a filter's time: a datetime-local input's value (UTC), a
// date, or an age such as 2h (that long ago).
func timeOf(s, name string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02", time.RFC3339} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%s %q: want a time (2006-01-02T15:04, UTC) or an age (2h)", name, s)
}

type deadRow struct {
	retryguard.Entry
	Model, Op string
}

type deadListData struct {
	Q          url.Values
	Query      string // the filter as a query string, for links and set actions
	Rows       []deadRow
	Total      int
	Offset     int
	Prev, Next string
	Err        string
	Functions  []string
}

func (c *Console) deadList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := &deadListData{Q: q}
	f, err := filterOf(q)
	if err != nil {
		d.Err = err.Error()
	}
	d.Offset, _ = strconv.Atoi(q.Get("offset"))
	d.Offset = max(d.Offset, 0)
	fq := url.Values{}
	for _, k := range []string{"function", "model", "error", "since", "until"} {
		if v := q.Get(k); v != "" {
			fq.Set(k, v)
		}
	}
	d.Query = fq.Encode()
	store := retryguard.NewStore(c.opt.DB)
	if d.Err == "" {
		es, total, err := store.Find(r.Context(), f, d.Offset, pageSize)
		if err != nil {
			d.Err = err.Error()
		}
		d.Total = total
		for _, e := range es {
			_, model, op, err := funcname.Parse(e.Function)
			if err != nil {
				model, op = "-", "-"
			}
			d.Rows = append(d.Rows, deadRow{Entry: e, Model: model, Op: op})
		}
	}
	if counts, err := store.CountDead(r.Context()); err == nil {
		d.Functions = sortedDead(counts)
	}
	page := func(off int) string {
		p := url.Values{}
		for k, v := range fq {
			p[k] = v
		}
		p.Set("offset", strconv.Itoa(off))
		return "/dead?" + p.Encode()
	}
	if d.Offset > 0 {
		d.Prev = page(max(d.Offset-pageSize, 0))
	}
	if d.Offset+pageSize < d.Total {
		d.Next = page(d.Offset + pageSize)
	}
	if r.Header.Get("HX-Request") == "true" && r.Header.Get("HX-Target") == "dead-table" {
		c.render(w, http.StatusOK, "dead", "table", d)
		return
	}
	c.full(w, "dead", "Dead letters", d)
}

type deadOneData struct {
	E        retryguard.Entry
	Model    string
	Payload  string
	Envelope *events.Envelope
	Row      []kv   // the row as the table has it now
	RowNote  string // why there is none
}

type kv struct{ K, V string }

func (c *Console) deadOne(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.Error(w, "console: dead letter "+r.PathValue("id")+": not an id", http.StatusBadRequest)
		return
	}
	e, err := retryguard.NewStore(c.opt.DB).Get(r.Context(), id)
	if errors.Is(err, retryguard.ErrNoEntry) {
		w.WriteHeader(http.StatusNotFound)
		c.full(w, "deadone", "Dead letter", &deadOneData{E: retryguard.Entry{ID: id}, RowNote: "no dead letter " + strconv.FormatInt(id, 10) + " (retried or purged)"})
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	d := &deadOneData{E: e, Payload: pretty(e.Payload)}
	_, d.Model, _, _ = funcname.Parse(e.Function)
	if env, err := events.Decode(e.Payload); err == nil {
		d.Envelope = env
		d.Row, d.RowNote = c.currentRow(r.Context(), env)
	} else {
		d.RowNote = "the payload is not a row event: no row to show"
	}
	c.full(w, "deadone", fmt.Sprintf("Dead letter %d", id), d)
}

// secret names columns and keys whose values the console never shows.
var secret = regexp.MustCompile(`(?i)pass(word|wd)?|secret|token|api_?key`)

// pretty indents a JSON payload, masking secret-looking keys; anything
// else is shown as text.
func pretty(p []byte) string {
	if !secret.Match(p) { // as it came: keys in their order
		var buf bytes.Buffer
		if json.Indent(&buf, p, "", "  ") == nil {
			return buf.String()
		}
	}
	var v any
	if err := json.Unmarshal(p, &v); err != nil {
		return string(p)
	}
	v = mask(v)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return string(p)
	}
	return strings.TrimSpace(buf.String())
}

func mask(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if secret.MatchString(k) {
				t[k] = "••••••"
				continue
			}
			t[k] = mask(x)
		}
	case []any:
		for i, x := range t {
			t[i] = mask(x)
		}
	}
	return v
}

// currentRow reads the event's row as it is now, by its primary key, from
// the table gearman.yml names for its model (never a table the payload
// names alone).
func (c *Console) currentRow(ctx context.Context, env *events.Envelope) ([]kv, string) {
	m, ok := c.opt.Config.Models[env.Model]
	if !ok {
		return nil, "model " + env.Model + " is not in gearman.yml's models: section"
	}
	if len(env.PK) == 0 {
		return nil, "the event carries no primary key"
	}
	from := quote(m.Table)
	if s := cmp.Or(m.Schema, env.Schema); s != "" {
		from = quote(s) + "." + from
	}
	var where []string
	var args []any
	for _, col := range sortedKeys(env.PK) {
		var v any
		dec := json.NewDecoder(bytes.NewReader(env.PK[col]))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return nil, "primary key " + col + ": " + err.Error()
		}
		if n, ok := v.(json.Number); ok {
			v = n.String()
		}
		where = append(where, quote(col)+" = ?")
		args = append(args, v)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	rows, err := c.opt.DB.QueryContext(ctx, "SELECT * FROM "+from+" WHERE "+strings.Join(where, " AND ")+" LIMIT 1", args...)
	if err != nil {
		return nil, "reading the row: " + err.Error()
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err.Error()
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, err.Error()
		}
		return nil, "the row is gone (deleted since)"
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err.Error()
	}
	out := make([]kv, len(cols))
	for i, col := range cols {
		v := "NULL"
		switch {
		case secret.MatchString(col):
			v = "••••••"
		case vals[i].Valid:
			v = vals[i].String
		}
		out[i] = kv{col, v}
	}
	return out, ""
}

func quote(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sortStrings(ks)
	return ks
}

// idsOf returns the dead letters an action names: its id fields, or, with
// scope=filter, every one its filter fields select.
func (c *Console) idsOf(r *http.Request) ([]int64, string, error) {
	if err := r.ParseForm(); err != nil {
		return nil, "", err
	}
	if r.PostForm.Get("scope") == "filter" {
		f, err := filterOf(r.PostForm)
		if err != nil {
			return nil, "", err
		}
		ids, err := retryguard.NewStore(c.opt.DB).FindIDs(r.Context(), f)
		return ids, "the filtered set", err
	}
	var ids []int64
	for _, s := range r.PostForm["id"] {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, "", fmt.Errorf("%q is not an id", s)
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, "", errors.New("no dead letter named (id, or scope=filter)")
	}
	return ids, fmt.Sprintf("%d named", len(ids)), nil
}

// deadRetry re-submits dead letters the way `dead retry` does (the retry
// guard's Replay): each is deleted once gearmand acknowledged its job.
func (c *Console) deadRetry(_ http.ResponseWriter, r *http.Request) (string, error) {
	ids, what, err := c.idsOf(r)
	if err != nil {
		return "retry", err
	}
	if len(ids) == 0 {
		return "retry: nothing selected, nothing re-submitted", nil
	}
	servers, err := c.opt.Config.ServerAddrs(c.opt.Server)
	if err != nil {
		return "retry", err
	}
	gc := gearman.NewClient(servers)
	defer gc.Close()
	g := retryguard.NewGuard(retryguard.NewStore(c.opt.DB), gc, c.opt.Config.RetryFor)
	n := 0
	for len(ids) > 0 { // never an empty list: Replay() alone means every dead letter
		part := ids[:min(len(ids), 500)]
		ids = ids[len(part):]
		k, err := g.Replay(r.Context(), part...)
		n += k
		if err != nil {
			return fmt.Sprintf("retry of %s: re-submitted %d", what, n), err
		}
	}
	return fmt.Sprintf("re-submitted %d dead letter(s) (%s); each left the table once gearmand took its job", n, what), nil
}

// deadPurge deletes dead letters: those named or filtered, or with
// older_than every one older (as `dead purge`).
func (c *Console) deadPurge(_ http.ResponseWriter, r *http.Request) (string, error) {
	store := retryguard.NewStore(c.opt.DB)
	if err := r.ParseForm(); err != nil {
		return "purge", err
	}
	if s := strings.TrimSpace(r.PostForm.Get("older_than")); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return "purge", fmt.Errorf("older than %q: want a duration such as 720h", s)
		}
		n, err := store.Purge(r.Context(), d)
		return fmt.Sprintf("purged %d dead letter(s) older than %s", n, d), err
	}
	ids, what, err := c.idsOf(r)
	if err != nil {
		return "purge", err
	}
	n, err := store.Delete(r.Context(), ids...)
	return fmt.Sprintf("purged %d dead letter(s) (%s)", n, what), err
}
