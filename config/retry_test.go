package config

import (
	"strings"
	"testing"
	"time"
)

func TestRetryPolicies(t *testing.T) {
	c, err := Parse("r.yml", []byte(`all:
  namespace: app
  retry:
    default: {attempts: 3}
    Article: {backoff: 2s, max_backoff: 1m, timeout: 30s}
    Article.publish: {attempts: 10}
    reverse: {attempts: 1}
`), "")
	if err != nil {
		t.Fatal(err)
	}
	for fn, want := range map[string]RetryPolicy{
		"app.Article.update":  {Attempts: 3, Backoff: 2 * time.Second, MaxBackoff: time.Minute, Timeout: 30 * time.Second},
		"app.Article.batch":   {Attempts: 3, Backoff: 2 * time.Second, MaxBackoff: time.Minute}, // its events have the timeout
		"app.Article.publish": {Attempts: 10, Backoff: time.Second, MaxBackoff: 5 * time.Minute},
		"app.Comment.insert":  {Attempts: 3, Backoff: time.Second, MaxBackoff: 5 * time.Minute},
		"reverse":             {Attempts: 1, Backoff: time.Second, MaxBackoff: 5 * time.Minute},
	} {
		if got := c.RetryFor(fn); got != want {
			t.Errorf("RetryFor(%s) = %+v, want %+v", fn, got, want)
		}
	}
	d, _ := Parse("r.yml", []byte("all: {}\n"), "")
	if got := d.RetryFor("x"); got != DefaultRetry {
		t.Errorf("default policy %+v", got)
	}
	for yml, want := range map[string]string{
		"all:\n  retry:\n    default: {attempts: 0}\n":            "r.yml:3: all.retry.default.attempts: want a number of attempts >= 1",
		"all:\n  retry:\n    default: {tries: 2}\n":               "r.yml:3: all.retry.default.tries: unknown key",
		"all:\n  retry:\n    X: {backoff: soon}\n":                "r.yml:3: all.retry.X.backoff: want a duration",
		"all:\n  retry:\n    X: {backoff: 1m, max_backoff: 1s}\n": "r.yml:3: all.retry.X: max_backoff 1s is below backoff 1m0s",
		"all:\n  retry:\n    \"a b\": {attempts: 2}\n":            "r.yml:3: all.retry.a b: want default, a function name",
	} {
		_, err := Parse("r.yml", []byte(yml), "")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", yml, err, want)
		}
	}
}
