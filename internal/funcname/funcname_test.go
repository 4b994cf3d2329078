package funcname_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/internal/funcname"
)

func TestFuncName(t *testing.T) {
	for _, tt := range []struct{ ns, model, op, name string }{
		{"app", "Article", events.OpUpdate, "app.Article.update"},
		{"app", "Article", "publish", "app.Article.publish"},
		{"my.app-prod", "Article_2", "build-feed", "my.app-prod.Article_2.build-feed"},
	} {
		if got := events.FuncName(tt.ns, tt.model, tt.op); got != tt.name {
			t.Errorf("FuncName: %q, want %q", got, tt.name)
		}
		ns, model, op, err := funcname.Parse(tt.name)
		if err != nil || ns != tt.ns || model != tt.model || op != tt.op {
			t.Errorf("funcname.Parse(%q) = %q, %q, %q, %v", tt.name, ns, model, op, err)
		}
	}
	if got := funcname.Queue("mails"); got != "queue.mails" {
		t.Errorf("QueueFunc: %q", got)
	}
}

func TestParseFuncNameErrors(t *testing.T) {
	for _, tt := range []struct{ name, msg string }{
		{"", "is not"},
		{"Article.update", "is not"},
		{".Article.update", "namespace: empty"},
		{"app..update", "model: empty"},
		{"app.Article.", "op or job: empty"},
		{"app..Article.update", "namespace: empty"},
		{"app.Art icle.update", "not allowed"},
		{"app.Article.up/date", "not allowed"},
		{"app.Article." + strings.Repeat("x", funcname.MaxPartLen+1), "op or job: 65 bytes"},
		{strings.Repeat("n", funcname.MaxNamespaceLen+1) + ".Article.update", "namespace: 129 bytes"},
	} {
		_, _, _, err := funcname.Parse(tt.name)
		if !errors.Is(err, funcname.ErrInvalid) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("funcname.Parse(%q): %v, want funcname.ErrInvalid mentioning %q", tt.name, err, tt.msg)
		}
	}
	if err := funcname.Check("app", "Art.icle", "update"); !errors.Is(err, funcname.ErrInvalid) {
		t.Errorf("CheckFuncName with a dotted model: %v", err)
	}
}
