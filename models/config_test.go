package models_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/rowgear/rowgear/config"
)

func lookup(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

// The example application's gearman.yml, with no variables set (defaults)
// and with the real environment (as the demo runs it).
func TestRepoGearmanYML(t *testing.T) {
	c, err := config.Loader{LookupEnv: lookup(nil)}.Load("config/gearman.yml", "")
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "Servers", c.Servers, map[string][]string{"default": {"127.0.0.1:4730"}})
	eq(t, "Workers", c.Workers, map[string]config.WorkerSet{"example1": {"reverse": {Type: "Worker1", Method: "reverse"}, "hash": {Type: "Worker1", Method: "hash"}}})
	eq(t, "DBWorkers", c.DBWorkers, map[string]config.DBWorkerSet{"example2": {
		"Article": {AllEvents: true, Jobs: []string{"buildFeed", "publish"}},
		"Comment": {AllEvents: true},
	}})
	eq(t, "Models", c.Models, map[string]config.Model{
		"Article": {Table: "articles", Events: []string{"insert", "update", "delete"}, Source: "trigger"},
		"Comment": {Table: "comments", Events: []string{"insert", "update", "delete"}, Source: "binlog"},
	})
	eq(t, "Database", c.Database, config.Database{DSN: "root@tcp(127.0.0.1:3307)/rowgear"})
	eq(t, "Binlog", c.Binlog, config.Binlog{ServerID: 1001, Flavor: "mariadb", Position: "table", Server: "default", Concurrency: 2, Batch: 100, StatsInterval: 10 * time.Second})
	eq(t, "Triggers", c.Triggers, config.Triggers{Mode: "outbox", ResendAfter: 30 * time.Second})

	c, err = config.Loader{LookupEnv: lookup(map[string]string{"ROWGEAR_GEARMAN": "10.0.0.5:4800"})}.Load("config/gearman.yml", "prod")
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "Servers", c.Servers["default"], []string{"10.0.0.5:4800"})

	if _, err := config.Load("config/gearman.yml", "dev"); err != nil {
		t.Fatalf("Load with the process environment: %v", err)
	}
}
