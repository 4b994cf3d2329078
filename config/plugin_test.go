package config_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/rowgear/rowgear/config"
)

// sfGearmanPlugin's own files (config/gearman.yml, config/gearman.yml.sample
// and its test fixture) load, with the plugin's meaning.
func TestPluginFilesLoad(t *testing.T) {
	c, err := config.Load("testdata/plugin/gearman.yml", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Servers["default"]; !reflect.DeepEqual(got, []string{config.DefaultServer}) {
		t.Errorf("default: ~ gives %v, want php-gearman's default %s", got, config.DefaultServer)
	}

	c, err = config.Load("testdata/plugin/gearman.yml.sample", "")
	if err != nil {
		t.Fatal(err)
	}
	if h := c.Workers["workername"]["functionname"]; h.Name() != "callback" {
		t.Errorf("functionname: callback gives handler %q", h.Name())
	}
	if h := c.Workers["example"]["size"]; h.Name() != "FileWorker.size" {
		t.Errorf("size: [FileWorker, size] gives handler %q", h.Name())
	}
	if _, ok := c.DBWorkers["example"]["Article"]; !ok {
		t.Errorf("doctrine: example: Article missing: %+v", c.DBWorkers)
	}
	if _, ok := c.Workers["example"]; !ok {
		t.Error("worker: example missing (the same set name as doctrine: example)")
	}
	if len(c.Notes) != 1 || c.Notes[0].Line != 18 || !strings.Contains(c.Notes[0].String(), `"callback"`) {
		t.Errorf("notes %v, want one at line 17 about the callback", c.Notes)
	}

	c, err = config.Load("testdata/plugin/fixture-gearman.yml", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Servers["test5"]; !reflect.DeepEqual(got, []string{"192.168.0.1:1111", "192.168.0.2:2222", "192.168.0.3:3333"}) {
		t.Errorf("test5 = %v", got)
	}
}

func TestNamingAndNotes(t *testing.T) {
	c, err := config.Parse("g.yml", []byte("all:\n  namespace: shop\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Notes) != 1 || c.Notes[0].Line != 2 || !strings.Contains(c.Notes[0].String(), "g.yml:2: all.namespace: rowgear prefixes") ||
		!strings.Contains(c.Notes[0].Msg, "naming: plugin") {
		t.Errorf("notes %v, want one naming line 2 and naming: plugin", c.Notes)
	}
	if c.Namespace != "shop" || c.FunctionSuffix != "" || c.JobFunction("Article", "publish") != "shop.Article.publish" {
		t.Errorf("rowgear naming: %q %q %q", c.Namespace, c.FunctionSuffix, c.JobFunction("Article", "publish"))
	}
	c, err = config.Parse("g.yml", []byte("all:\n  naming: rowgear\n  namespace: shop\n"), "")
	if err != nil || len(c.Notes) != 0 {
		t.Errorf("explicit naming: rowgear: %v, notes %v", err, c.Notes)
	}
	c, err = config.Parse("g.yml", []byte("all:\n  naming: plugin\n  namespace: shop\n"), "")
	if err != nil || len(c.Notes) != 0 {
		t.Fatalf("%v, notes %v", err, c.Notes)
	}
	if c.Namespace != config.DefaultNamespace || c.FunctionSuffix != "@shop" || c.JobFunction("Article", "publish") != "Article.publish@shop" {
		t.Errorf("plugin naming: %q %q %q", c.Namespace, c.FunctionSuffix, c.JobFunction("Article", "publish"))
	}
	c, err = config.Parse("g.yml", []byte("all:\n  naming: plugin\n"), "")
	if err != nil || c.FunctionSuffix != "" || c.JobFunction("Article", "publish") != "Article.publish" {
		t.Errorf("plugin naming without namespace: %v %q", err, c.JobFunction("Article", "publish"))
	}
	if _, err := config.Parse("g.yml", []byte("all:\n  naming: symfony\n"), ""); err == nil || !strings.Contains(err.Error(), "g.yml:2: all.naming: want rowgear or plugin") {
		t.Errorf("bad naming: %v", err)
	}
}

func TestSerializer(t *testing.T) {
	c, err := config.Parse("g.yml", []byte(`all:
  naming: plugin
  namespace: shop
  server: {default: "h:1", legacy: "h:2"}
  serializer:
    server: {legacy: php}
    set: {example1: php}
    function: {queue.q1: php, reverse: json}
`), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ server, set, fn, want string }{
		{"", "", "hash", "json"},
		{"legacy", "", "hash", "php"},
		{"legacy", "", "reverse@shop", "json"},
		{"", "example1", "hash", "php"},
		{"", "", "queue.q1@shop", "php"},
		{"", "", "queue.q1", "php"},
	} {
		if got := c.SerializerFor(tt.server, tt.set, tt.fn); got != tt.want {
			t.Errorf("SerializerFor(%q, %q, %q) = %s, want %s", tt.server, tt.set, tt.fn, got, tt.want)
		}
	}
	c, err = config.Parse("g.yml", []byte("all:\n  serializer: php\n"), "")
	if err != nil || c.SerializerFor("", "", "x") != "php" {
		t.Errorf("serializer: php: %v", err)
	}
	for yml, want := range map[string]string{
		"all:\n  serializer: xml\n":                   "g.yml:2: all.serializer: want json or php",
		"all:\n  serializer: {server: {nope: php}}\n": `all.serializer.server.nope: unknown gearman connection "nope"`,
		"all:\n  serializer: {functions: {a: php}}\n": "all.serializer.functions: unknown key",
		"all:\n  serializer: {function: {a: yaml}}\n": "all.serializer.function.a: want json or php",
	} {
		if _, err := config.Parse("g.yml", []byte(yml), ""); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", yml, err, want)
		}
	}
}
