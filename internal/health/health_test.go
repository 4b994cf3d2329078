package health_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/health"
)

func TestListenAddr(t *testing.T) {
	for in, want := range map[string]string{
		"9100": "127.0.0.1:9100", ":9100": "127.0.0.1:9100", "0.0.0.0:9100": "0.0.0.0:9100", "[::1]:80": "[::1]:80",
	} {
		if got, err := health.ListenAddr(in); err != nil || got != want {
			t.Errorf("ListenAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := health.ListenAddr("localhost"); err == nil {
		t.Error("ListenAddr(localhost): no error")
	}
}

func TestReadyzNamesFailingChecks(t *testing.T) {
	var conns health.Conns
	checks := map[string]health.Check{
		"gearmand": conns.Check([]string{"g1:4730", "g2:4730"}),
		"database": func(context.Context) error { return nil },
	}
	srv := httptest.NewServer(health.Handler(checks, 0))
	defer srv.Close()
	if err := health.Probe(context.Background(), srv.URL+"/healthz"); err != nil {
		t.Errorf("/healthz: %v", err)
	}
	err := health.Probe(context.Background(), srv.URL+"/readyz")
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "gearmand: no connection to gearmand g1:4730, g2:4730") {
		t.Errorf("/readyz with nothing connected: %v", err)
	}
	conns.Observe(gearman.ConnEvent{Server: "g1:4730", Up: true})
	conns.Observe(gearman.ConnEvent{Server: "g2:4730", Up: true})
	if err := health.Probe(context.Background(), srv.URL+"/readyz"); err != nil {
		t.Errorf("/readyz connected: %v", err)
	}
	conns.Observe(gearman.ConnEvent{Server: "g2:4730"})
	checks["database"] = func(context.Context) error { return errors.New("connection refused") }
	srv2 := httptest.NewServer(health.Handler(checks, 0))
	defer srv2.Close()
	res, err := http.Get(srv2.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	got := string(b)
	if res.StatusCode != http.StatusServiceUnavailable || got != "database: connection refused\ngearmand: no connection to gearmand g2:4730\n" {
		t.Errorf("/readyz: %s %q", res.Status, got)
	}
}
