package triggers

import (
	"strings"
	"testing"

	"github.com/rowgear/rowgear/config"
)

func TestSpecs(t *testing.T) {
	cfg := &config.Config{File: "gearman.yml", Triggers: config.Triggers{Mode: "lenient"}, Models: map[string]config.Model{
		"Article": {Table: "articles", Events: []string{"update"}, Columns: []string{"title"}},
		"Comment": {Table: "comments", Source: "binlog"},
		"Author":  {Table: "authors", Source: "trigger"},
	}}
	specs, err := Specs(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 2 || specs[0].Model != "Article" || specs[1].Model != "Author" {
		t.Fatalf("Specs = %+v, want Article and Author (Comment is binlog)", specs)
	}
	if s := specs[0]; s.Namespace != config.DefaultNamespace || s.Mode != "lenient" || s.Table != "articles" ||
		len(s.Events) != 1 || len(s.Columns) != 1 {
		t.Errorf("Article spec = %+v", s)
	}
	if _, err := Specs(cfg, "Comment"); err == nil || !strings.Contains(err.Error(), "not trigger") {
		t.Errorf("binlog model: err = %v", err)
	}
	if _, err := Specs(cfg, "Nope"); err == nil || !strings.Contains(err.Error(), "not in the models section") {
		t.Errorf("unknown model: err = %v", err)
	}
}
