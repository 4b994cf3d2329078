// Package e2e runs the example application's stack as rowgear's
// docker-compose.yml describes it, but on
// this machine's private services (scripts/services) instead of containers:
// the migrate, binlogbridge, dbworker and demo services' own commands, with
// their environment, against a fresh database and the shared gearmand. It
// checks that a row change reaches its handler through each source (Article
// through its trigger, Comment through the binlog), and that the compose file
// parses (`docker-compose config -q`) and wires the services in order.
//
// Like every integration test here, it fails (never skips) when the services
// or docker-compose are missing, and says how to get them.
package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/internal/testenv"
)

// repo is the repository root, seen from this package's directory (go test
// runs a package's tests in its directory); example is the bundled models'
// directory (their config and migrations).
const (
	repo    = "../../.."
	example = "../../../models"
)

// binaries are the packages of the compose services' commands: the example
// application's own binaries, and rowgear's binlogbridge.
var binaries = map[string]string{
	"dbworker":     "github.com/rowgear/rowgear/cmd/dbworker",
	"demo":         "github.com/rowgear/rowgear/cmd/demo",
	"binlogbridge": "github.com/rowgear/rowgear/cmd/binlogbridge",
}

// service is the part of a docker-compose service this test reads.
type service struct {
	Build       any               `yaml:"build"`
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	Volumes  []string `yaml:"volumes"`
	Ports    []string `yaml:"ports"`
	Profiles []string `yaml:"profiles"`
}

type composeFile struct {
	Services map[string]service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repo, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

// goServices are the compose services that run our Go image.
var goServices = []string{"migrate", "binlogbridge", "dbworker", "demo"}

// TestComposeConfig validates docker-compose.yml with docker-compose itself
// (no Docker engine needed) and checks what the stack relies on: the start
// order, the healthchecks, the persistent gearmand queue, loopback-only ports,
// and that every ${VAR} of config/gearman.yml is set for the Go services.
func TestComposeConfig(t *testing.T) {
	dc := testenv.Tool(t, "docker-compose", "run `scripts/services install`, which installs the Debian package docker-compose")
	cmd := exec.Command(dc, "--project-directory", repo, "-f", filepath.Join(repo, "docker-compose.yml"), "config", "-q")
	cmd.Env = composeEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker-compose config -q: %v\n%s", err, out)
	}
	cmd = exec.Command(dc, "--project-directory", repo, "-f", filepath.Join(repo, "docker-compose.yml"), "config", "--services")
	cmd.Env = composeEnv()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker-compose config --services: %v", err)
	}
	got := strings.Fields(string(out))
	slices.Sort(got)
	want := []string{"binlogbridge", "binlogbridge-standby", "dbworker", "demo", "gearmand", "gearmand-binlog", "mariadb", "migrate"}
	if !slices.Equal(got, want) {
		t.Fatalf("docker-compose config --services = %v, want %v", got, want)
	}

	c := loadCompose(t)
	dep := func(svc, on, cond string) {
		t.Helper()
		if d, ok := c.Services[svc].DependsOn[on]; !ok || d.Condition != cond {
			t.Errorf("%s must depend on %s with condition %s (got %+v)", svc, on, cond, c.Services[svc].DependsOn)
		}
	}
	dep("mariadb", "gearmand", "service_healthy")
	dep("migrate", "mariadb", "service_healthy")
	for _, s := range []string{"binlogbridge", "dbworker"} {
		dep(s, "gearmand-binlog", "service_healthy")
		dep(s, "migrate", "service_completed_successfully")
	}
	dep("dbworker", "gearmand", "service_healthy")
	health := func(svc, want string) {
		t.Helper()
		h := c.Services[svc].Healthcheck
		if h == nil || !strings.Contains(strings.Join(h.Test, " "), want) {
			t.Errorf("%s: healthcheck %+v does not run %q", svc, h, want)
		}
	}
	health("mariadb", "mariadb-admin ping")
	health("gearmand", "gearadmin")
	health("gearmand-binlog", "gearadmin")
	for svc, bin := range map[string]string{"binlogbridge": "binlogbridge", "dbworker": "dbworker"} {
		health(svc, bin+" probe http://127.0.0.1:"+c.Services[svc].Environment["ROWGEAR_HEALTH_ADDR"]+"/readyz")
	}

	// The commands the stack test runs are the compose services' commands.
	for svc, cmd := range map[string][]string{
		"migrate":      {"dbworker", "migrate", "up"},
		"binlogbridge": {"binlogbridge", "--verbose"},
		"dbworker":     {"dbworker", "--config=example2", "--count=0", "--timeout=-1", "--verbose"},
		"demo":         {"demo"},
	} {
		if got := c.Services[svc].Command; !slices.Equal(got, cmd) {
			t.Errorf("%s: command %q, want %q", svc, got, cmd)
		}
	}
	// Every ${VAR} without a default in config/gearman.yml, and the ones with
	// a loopback default, must be set for the Go services.
	yml, err := os.ReadFile(filepath.Join(example, "config", "gearman.yml"))
	if err != nil {
		t.Fatal(err)
	}
	yml = regexp.MustCompile(`(?m)(^|\s)#.*$`).ReplaceAll(yml, nil) // comments mention ${VAR} too
	vars := regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)`).FindAllStringSubmatch(string(yml), -1)
	if len(vars) == 0 {
		t.Fatal("config/gearman.yml uses no ${VAR}: the compose services could not point it at their servers")
	}
	for _, s := range goServices {
		env := c.Services[s].Environment
		for _, v := range vars {
			if _, ok := env[v[1]]; !ok {
				t.Errorf("%s: environment does not set %s, which config/gearman.yml reads", s, v[1])
			}
		}
		if env["ROWGEAR_CONFIG"] == "" {
			t.Errorf("%s: environment does not set ROWGEAR_CONFIG", s)
		}
		if c.Services[s].Build == nil {
			t.Errorf("%s: no build: compose would try to pull %s", s, c.Services[s].Image)
		}
	}
	// Every image is built from files of this repository.
	for name, svc := range c.Services {
		b, ok := svc.Build.(map[string]any)
		if !ok {
			t.Errorf("%s: build %v: want a context and a dockerfile", name, svc.Build)
			continue
		}
		ctxDir, _ := b["context"].(string)
		df, _ := b["dockerfile"].(string)
		if df == "" {
			df = "Dockerfile"
		}
		if _, err := os.Stat(filepath.Join(repo, ctxDir, df)); ctxDir == "" || err != nil {
			t.Errorf("%s: build context %q, dockerfile %q: %v", name, ctxDir, df, err)
		}
	}
	// Persistent state on named volumes.
	for svc, path := range map[string]string{"mariadb": "/var/lib/mysql"} {
		ok := false
		for _, v := range c.Services[svc].Volumes {
			name, p, _ := strings.Cut(v, ":")
			_, named := c.Volumes[name]
			ok = ok || (named && p == path)
		}
		if !ok {
			t.Errorf("%s: %s is not on a named volume (volumes %v)", svc, path, c.Services[svc].Volumes)
		}
	}
	// Published ports only on loopback.
	for name, s := range c.Services {
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s publishes %q beyond loopback", name, p)
			}
		}
	}
	// gearmand runs its memory queue: the durability is in the database
	// (the trigger outbox, the bridge's handled position), so a persistent
	// queue would only slow every job down.
	raw, err := os.ReadFile(filepath.Join(repo, "docker", "gearmand", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAll(raw, nil) // instructions only
	if bytes.Contains(df, []byte("--queue-type")) {
		t.Error("docker/gearmand/Dockerfile: gearmand runs its memory queue (no --queue-type)")
	}
}

// composeEnv is the environment for docker-compose: ours, minus anything
// that would point it at another project or file.
func composeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "COMPOSE_") {
			env = append(env, kv)
		}
	}
	return env
}

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.RemoveBuilds()
	os.Exit(code)
}

// stack runs compose services' commands as local processes.
type stack struct {
	t   *testing.T
	dir string // the working directory: config/gearman.yml is under it
	env []string
	ns  string // gearman namespace of this stack
}

// proc is a running service.
type proc struct{ *testenv.Proc }

func (s *stack) command(name string, argv []string) *exec.Cmd {
	pkg, ok := binaries[argv[0]]
	if !ok {
		s.t.Fatalf("service %s runs %s, which this test cannot build", name, argv[0])
	}
	cmd := exec.Command(testenv.Build(s.t, pkg), argv[1:]...)
	cmd.Dir = s.dir
	cmd.Env = s.env
	return cmd
}

// run runs a one-shot service and fails the test unless it exits 0.
func (s *stack) run(name string, argv []string) string {
	s.t.Helper()
	cmd := s.command(name, argv)
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("service %s (%s): %v\n%s", name, strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// start starts a long-running service, with env added to the stack's; it
// is stopped at cleanup.
func (s *stack) start(name string, argv []string, env ...string) *proc {
	s.t.Helper()
	cmd := s.command(name, argv)
	cmd.Env = append(cmd.Env, env...)
	return &proc{testenv.StartProc(s.t, name, cmd)}
}

// waitFor waits until the process's output matches re.
func (p *proc) waitFor(t *testing.T, what, re string) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := rx.FindStringSubmatch(p.Out.String()); m != nil {
			return m
		}
		select {
		case <-p.Done():
			t.Fatalf("%s exited (%v) before %s; output:\n%s", p.Name, p.Err(), what, p.Out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: timed out waiting for %s (/%s/); output:\n%s", p.Name, what, re, p.Out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM, as `docker-compose stop` does, and wants exit 0.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.Cmd.Process.Signal(syscall.SIGTERM)
	if err := p.Wait(t, 30*time.Second); err != nil {
		t.Fatalf("%s exited with %v after SIGTERM; output:\n%s", p.Name, err, p.Out)
	}
}

// testConfig writes config/gearman.yml under dir: the repository's file with
// a namespace and a binlog server_id of this test's own, so that its
// functions and its replica do not meet other tests' on the shared services.
func testConfig(t *testing.T, dir, namespace string, serverID uint32) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(example, "config", "gearman.yml"))
	if err != nil {
		t.Fatal(err)
	}
	yml := string(data)
	allRE := regexp.MustCompile(`(?m)^all:\n`)
	if n := len(allRE.FindAllStringIndex(yml, -1)); n != 1 {
		t.Fatalf("config/gearman.yml: want one `all:` line, found %d", n)
	}
	yml = allRE.ReplaceAllString(yml, "all:\n  namespace: "+namespace+"\n")
	sidRE := regexp.MustCompile(`(?m)^(\s+server_id:) *\S+$`)
	if n := len(sidRE.FindAllStringIndex(yml, -1)); n != 1 {
		t.Fatalf("config/gearman.yml: want one binlog server_id line, found %d", n)
	}
	yml = sidRE.ReplaceAllString(yml, fmt.Sprintf("${1} %d", serverID))
	p := filepath.Join(dir, "config", "gearman.yml")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestStack runs the compose stack's Go services against the private
// MariaDB and gearmand: migrate, then binlogbridge and dbworker, then the
// demo writer, and follows row changes to their handlers in dbworker's
// --verbose output.
func TestStack(t *testing.T) {
	gearmand := testenv.Gearman(t)
	db, dsn := testenv.DB(t)
	c := loadCompose(t)

	ns := testenv.Name(t, "e2e")
	serverID := 1<<20 + rand.Uint32N(1<<30)
	dir := t.TempDir()
	cfgPath := testConfig(t, dir, ns, serverID)

	// The Go services' environment from docker-compose.yml, pointed at the
	// local services instead of the compose network.
	local := map[string]string{
		"ROWGEAR_CONFIG":       cfgPath,
		"ROWGEAR_GEARMAN":      gearmand,
		"ROWGEAR_DATABASE_DSN": dsn,
		// The local root has no password; the compose accounts and their
		// password files are tested in docker/mariadb.
		"ROWGEAR_DB_PASSWORD_FILE": "",
		// One bridge runs here; the stack's two share a lease (compose test).
		"ROWGEAR_BINLOG_HA": "false",
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ROWGEAR_") {
			env = append(env, kv)
		}
	}
	for k := range c.Services["dbworker"].Environment {
		if k == "ROWGEAR_HEALTH_ADDR" { // a container's own loopback: each service gets a free port below
			continue
		}
		v, ok := local[k]
		if !ok {
			t.Fatalf("docker-compose.yml sets %s for dbworker; this test does not know its local value", k)
		}
		env = append(env, k+"="+v)
	}
	// The config the services will read, as they read it.
	for k, v := range local {
		t.Setenv(k, v)
	}
	cfg, err := config.Load(cfgPath, "prod")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Namespace != ns || cfg.Binlog.ServerID != serverID || cfg.Database.DSN != dsn {
		t.Fatalf("test config: namespace %q, server_id %d, dsn %q; want %q, %d, %q",
			cfg.Namespace, cfg.Binlog.ServerID, cfg.Database.DSN, ns, serverID, dsn)
	}

	s := &stack{t: t, dir: dir, env: env, ns: ns}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s.run("migrate", c.Services["migrate"].Command)
	ownNamespaceTriggers(t, s)

	// Each long-running service serves /readyz on a port of its own here
	// (in compose, on its container's loopback).
	ports := map[string]string{}
	for _, svc := range []string{"binlogbridge", "dbworker"} {
		ports[svc] = strconv.Itoa(testenv.FreePort(t))
	}
	bridge := s.start("binlogbridge", c.Services["binlogbridge"].Command, "ROWGEAR_HEALTH_ADDR="+ports["binlogbridge"])
	bridge.waitFor(t, "the bridge to start", `msg="binlog bridge starting"`)
	worker := s.start("dbworker", c.Services["dbworker"].Command, "ROWGEAR_HEALTH_ADDR="+ports["dbworker"])
	worker.waitFor(t, "the worker to start", `msg="worker starting"`)
	// Their compose healthchecks pass.
	for svc, port := range ports {
		test := c.Services[svc].Healthcheck.Test[1:] // after "CMD"
		argv := make([]string, len(test))
		for i, a := range test {
			argv[i] = strings.Replace(a, "127.0.0.1:"+c.Services[svc].Environment["ROWGEAR_HEALTH_ADDR"], "127.0.0.1:"+port, 1)
		}
		testenv.Eventually(t, 60*time.Second, svc+"'s healthcheck to pass", func() bool {
			return s.command(svc+" healthcheck", argv).Run() == nil
		})
	}

	exec1 := func(q string, args ...any) int64 {
		t.Helper()
		r, err := db.ExecContext(ctx, q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		id, _ := r.LastInsertId()
		return id
	}
	fn := func(model, op string) string { return regexp.QuoteMeta(ns + "." + model + "." + op) }

	// Article: through its trigger and the UDF.
	a := exec1("INSERT INTO articles (title, body) VALUES ('e2e article', 'via trigger')")
	worker.waitFor(t, "Article.insert (trigger) to reach its handler",
		fmt.Sprintf(`msg=Article\.TriggerInsert id=%d title="e2e article"`, a))
	worker.waitFor(t, "the Article.insert job to come from the trigger",
		`msg="job start" function=`+fn("Article", "insert")+` .*\\"source\\": ?\\"trigger\\"`)
	exec1("UPDATE articles SET title = 'e2e article, edited' WHERE id = ?", a)
	worker.waitFor(t, "Article.update (trigger) to reach its handler with the modified column",
		fmt.Sprintf(`msg=Article\.TriggerUpdate id=%d title="e2e article, edited" modified=\[title\]`, a))

	// Comment: through the binlog and binlogbridge.
	cm := exec1("INSERT INTO comments (article_id, author, body) VALUES (?, 'eve', 'via binlog')", a)
	worker.waitFor(t, "Comment.insert (binlog) to reach its handler",
		fmt.Sprintf(`msg=Comment\.TriggerInsert id=%d article_id=%d author=eve source=binlog`, cm, a))
	bridge.waitFor(t, "the bridge to publish Comment.insert", `msg=published fn=`+fn("Comment", "insert"))
	exec1("UPDATE comments SET body = 'edited' WHERE id = ?", cm)
	worker.waitFor(t, "Comment.update (binlog) to reach its handler with the modified column",
		fmt.Sprintf(`msg=Comment\.TriggerUpdate id=%d article_id=%d author=eve modified=\[body\] source=binlog`, cm, a))
	exec1("DELETE FROM comments WHERE id = ?", cm)
	worker.waitFor(t, "Comment.delete (binlog) to reach its handler",
		fmt.Sprintf(`msg=Comment\.TriggerDelete id=%d .*source=binlog`, cm))
	if strings.Contains(bridge.Out.String(), "Article.") {
		t.Errorf("binlogbridge published Article events, whose source is trigger:\n%s", bridge.Out)
	}

	// The demo writer: record job publish and table job buildFeed from
	// application code, run by the same worker.
	demo := s.run("demo", c.Services["demo"].Command)
	for _, re := range []string{`(?m)^publish article \d+: queued in the background`, `(?m)^publish article \d+: published at `, `(?m)^buildFeed: [1-9]\d* items$`} {
		if !regexp.MustCompile(re).MatchString(demo) {
			t.Fatalf("demo output does not match /%s/:\n%s", re, demo)
		}
	}
	worker.waitFor(t, "the publish job", `msg=Article\.Publish id=\d+`)
	worker.waitFor(t, "the buildFeed job", `msg=ArticleTable\.BuildFeed items=[1-9]`)
	worker.waitFor(t, "publish's own update to come back through the trigger",
		`msg=Article\.TriggerUpdate id=\d+ .*modified=\[published_at\]`)
	exec1("DELETE FROM articles WHERE id = ?", a)
	worker.waitFor(t, "Article.delete (trigger) to reach its handler",
		fmt.Sprintf(`msg=Article\.TriggerDelete id=%d title="e2e article, edited"`, a))

	// docker-compose stop: SIGTERM, clean exit.
	bridge.stop(t)
	worker.stop(t)
	bridge.waitFor(t, "the bridge to save its position", `msg="binlog bridge stopped"`)
	worker.waitFor(t, "the worker to report", `msg="worker stopped"`)
	if failed := regexp.MustCompile(`msg="job failed".*`).FindString(worker.Out.String()); failed != "" {
		t.Errorf("a job failed: %s", failed)
	}
}

// ownNamespaceTriggers gives the trigger-sourced models triggers that submit
// to this test's namespace, the way an application with a namespace of its
// own does it: the example's migration 00002 holds its triggers generated for the
// default namespace (rowgear, what the compose stack runs), so generate a
// migration replacing them from the config and the live schema, apply it,
// and check that nothing drifted.
func ownNamespaceTriggers(t *testing.T, s *stack) {
	t.Helper()
	dir := filepath.Join(s.dir, "migrations")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(example, "migrations", "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations in %s/migrations (%v)", example, err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := s.run("triggers generate", []string{"dbworker", "triggers", "generate", "--out", dir})
	if !strings.Contains(out, "wrote ") {
		t.Fatalf("dbworker triggers generate wrote no migration for namespace %s:\n%s", s.ns, out)
	}
	s.run("migrate --dir", []string{"dbworker", "migrate", "--dir", dir, "up"})
	s.run("triggers check", []string{"dbworker", "triggers", "check"})
}
