package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/rowgear/rowgear/cli"
	"github.com/rowgear/rowgear/internal/status"
	"github.com/rowgear/rowgear/internal/testenv"
)

// browser starts Debian's headless Chromium on an empty profile; dialogs
// (the console's confirmations) are accepted.
func browser(t *testing.T) context.Context {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed (scripts/services installs it): %v", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1360, 1000),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser: no deadline on this first run
		t.Fatalf("starting chromium: %v", err)
	}
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	return ctx
}

// do runs browser steps with a deadline generous for a loaded machine.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// js evaluates a string expression in the page ("" on an error).
func js(ctx context.Context, expr string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		return ""
	}
	return v
}

func jsQuote(s string) string { b, _ := json.Marshal(s); return string(b) }

// text is the visible text of the element sel selects ("" when none).
func text(ctx context.Context, sel string) string {
	return js(ctx, `(function(){var e=document.querySelector(`+jsQuote(sel)+`);return e?e.innerText:""})()`)
}

// attr is an attribute of the element sel selects ("" when none).
func attr(ctx context.Context, sel, name string) string {
	return js(ctx, `(function(){var e=document.querySelector(`+jsQuote(sel)+`);return e?(e.getAttribute(`+jsQuote(name)+`)||""):""})()`)
}

// waitText polls the text of sel until cond holds.
func waitText(t *testing.T, ctx context.Context, sel, what string, cond func(string) bool) string {
	t.Helper()
	var got string
	deadline := time.Now().Add(60 * time.Second)
	for got = text(ctx, sel); !cond(got); got = text(ctx, sel) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 60s waiting for %s; %s shows %q", what, sel, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return got
}

// ready waits until the page has loaded and htmx has set it up, so that
// a click reaches htmx's handlers (a loaded machine runs the deferred
// scripts late).
func ready(t *testing.T, ctx context.Context) {
	t.Helper()
	waitText(t, ctx, "body", "the page to load", func(string) bool {
		return js(ctx, `document.readyState === "complete" && window.htmx ? "yes" : ""`) == "yes"
	})
}

// shot writes a screenshot of the page to dir.
func shot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	png, err := chromedp.Run(c, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestConsoleInABrowser drives the console in Chromium against a running
// worker, bridge, MariaDB and gearmand.
func TestConsoleInABrowser(t *testing.T) {
	n := newNotes(t)
	n.generate()
	n.mustRun("migrate", "up")
	wm, bm, cp := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	n.start("--config=everything", "--count=0", "--timeout=-1", "--concurrency=2", fmt.Sprintf("--metrics-addr=127.0.0.1:%d", wm))
	n.start("bridge", fmt.Sprintf("--metrics-addr=127.0.0.1:%d", bm))
	testenv.Eventually(t, 30*time.Second, "the bridge to save its start position", func() bool {
		return n.count("SELECT COUNT(*) FROM rowgear_binlog_position") == 1
	})
	n.exec("INSERT INTO tickets (subject) VALUES ('printer')")
	n.handled("Ticket", "insert", "binlog", 1)

	token := fmt.Sprintf("tok-%d", time.Now().UnixNano())
	cmd := n.command("console", fmt.Sprintf("--addr=127.0.0.1:%d", cp), "--sample-every=1s",
		fmt.Sprintf("--metrics=127.0.0.1:%d", wm), fmt.Sprintf("--metrics=127.0.0.1:%d", bm))
	cmd.Env = append(cmd.Env, "ROWGEAR_CONSOLE_TOKEN="+token)
	testenv.StartProc(t, "notes console", cmd)
	base := fmt.Sprintf("http://127.0.0.1:%d", cp)
	testenv.Eventually(t, 30*time.Second, "the console to answer", func() bool {
		resp, err := http.Get(base + "/api/status")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	dir := os.Getenv("ROWGEAR_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	ctx := browser(t)

	// Overview: the functions and the bridge as `status --json` has them.
	do(t, ctx, "overview", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#functions")))
	update := n.ns + ".Ticket.update"
	waitText(t, ctx, "#functions", "the overview to list "+update, func(s string) bool { return strings.Contains(s, update) })
	waitText(t, ctx, "#bridge-lag", "the overview to show the bridge's lag", func(s string) bool { return strings.HasSuffix(s, " s") })
	out, _ := n.run("status", "--json") // exits 1 when there is a problem; the report is what counts
	var rep status.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	checked := 0
	for _, s := range rep.Servers {
		for _, f := range s.Functions {
			row := fmt.Sprintf(`#functions tr[data-function=%q]`, f.Function)
			if got := attr(ctx, row+" td[data-workers]", "data-workers"); got != strconv.Itoa(f.Workers) {
				t.Errorf("%s: the page shows %s workers, status --json %d", f.Function, got, f.Workers)
			}
			if got := attr(ctx, row+" td[data-queued]", "data-queued"); got != strconv.Itoa(f.Queued) {
				t.Errorf("%s: the page shows %s queued, status --json %d", f.Function, got, f.Queued)
			}
			checked++
		}
	}
	if checked < 3 {
		t.Errorf("status --json lists %d functions", checked)
	}
	if rep.Bridge == nil || rep.Bridge.LagSeconds == nil {
		t.Fatalf("status --json has no bridge lag: %s", out)
	}
	lag, err := strconv.ParseFloat(attr(ctx, "#bridge-lag", "data-lag"), 64)
	if err != nil || math.Abs(lag-*rep.Bridge.LagSeconds) > 5 {
		t.Errorf("the page's bridge lag %v (%v), status --json %v", lag, err, *rep.Bridge.LagSeconds)
	}
	if attr(ctx, "#bridge-behind", "data-behind") == "" {
		t.Errorf("the page shows no bytes behind")
	}

	// The charts move while a writer runs.
	before := attr(ctx, "#chart-events", "data-points")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			n.db.Exec("INSERT INTO tickets (subject) VALUES (?)", fmt.Sprintf("load %d", i))
		}
	}()
	testenv.Eventually(t, 60*time.Second, "the charts to show the writer's events", func() bool {
		if a, _ := strconv.Atoi(attr(ctx, "#chart-events", "data-active")); a < 5 { // a line, for the screenshot
			return false
		}
		pts, w, b, p50 := attr(ctx, "#chart-events", "data-points"), attr(ctx, "#chart-events", "data-worker"),
			attr(ctx, "#chart-events", "data-bridge"), attr(ctx, "#chart-latency", "data-p50")
		np, _ := strconv.Atoi(pts)
		nb, _ := strconv.Atoi(before)
		wv, _ := strconv.ParseFloat(w, 64)
		bv, _ := strconv.ParseFloat(b, 64)
		pv, _ := strconv.ParseFloat(p50, 64)
		return np > nb && wv > 0 && bv > 0 && pv > 0
	})
	shot(t, ctx, dir, "overview")
	close(stop)
	wg.Wait()

	// A failing handler's job is a dead letter with its payload and error.
	n.exec("UPDATE settings SET helpdesk_down = 1")
	n.exec("UPDATE tickets SET subject = 'printer on fire' WHERE id = 1")
	testenv.Eventually(t, 60*time.Second, "the failing ticket update to be dead-lettered", func() bool {
		return n.count("SELECT COUNT(*) FROM rowgear_failed_jobs WHERE state = 'dead' AND function = ?", update) == 1
	})
	var id int
	if err := n.db.QueryRow("SELECT id FROM rowgear_failed_jobs WHERE state = 'dead'").Scan(&id); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "dead letters", chromedp.Navigate(base+"/dead?model=Ticket"), chromedp.WaitVisible(chromedp.CSS("#dead")))
	waitText(t, ctx, fmt.Sprintf(`#dead tr[data-id="%d"]`, id), "the dead letter's row", func(s string) bool {
		return strings.Contains(s, update) && strings.Contains(s, "help desk is down")
	})
	shot(t, ctx, dir, "dead-letters")
	ready(t, ctx)
	do(t, ctx, "dead letter", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#dead tr[data-id="%d"] a`, id))), chromedp.WaitVisible(chromedp.CSS("#payload")))
	waitText(t, ctx, "#payload", "the payload", func(s string) bool {
		return strings.Contains(s, `"printer on fire"`) && strings.Contains(s, `"Ticket"`)
	})
	waitText(t, ctx, "#errors", "the errors", func(s string) bool { return strings.Count(s, "help desk is down") == 2 })
	waitText(t, ctx, "#row", "the row now", func(s string) bool { return strings.Contains(s, "printer on fire") })

	// Without the token: refused, the dead letter stays.
	ready(t, ctx)
	do(t, ctx, "retry without token", chromedp.Click(chromedp.CSS(`button[hx-post="/dead/retry"]`)))
	waitText(t, ctx, "#result-msg", "the refusal", func(s string) bool { return strings.Contains(s, "needs the console's token") })
	if c := n.count("SELECT COUNT(*) FROM rowgear_failed_jobs WHERE id = ?", id); c != 1 {
		t.Fatalf("a retry without the token took the dead letter")
	}
	shot(t, ctx, dir, "dead-letter")

	// The handler is fixed; the retry from the page replays it.
	n.exec("UPDATE settings SET helpdesk_down = 0")
	ready(t, ctx)
	do(t, ctx, "retry with token", chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS(`button[hx-post="/dead/retry"]`)))
	waitText(t, ctx, "#result-msg", "the retry's result", func(s string) bool { return strings.Contains(s, "re-submitted 1 dead letter") })
	n.handled("Ticket", "update", "binlog", 1)
	do(t, ctx, "dead letters again", chromedp.Navigate(base+"/dead"), chromedp.WaitVisible(chromedp.CSS("#dead")))
	waitText(t, ctx, "#dead-total", "the dead letter to disappear", func(s string) bool { return s == "0" })
	if c := n.count("SELECT COUNT(*) FROM rowgear_failed_jobs"); c != 0 {
		t.Errorf("%d failed jobs left after the retry", c)
	}

	// A cross-site POST, even with the right token, is refused.
	n.exec("UPDATE settings SET helpdesk_down = 1")
	n.exec("UPDATE tickets SET subject = 'toner' WHERE id = 1")
	testenv.Eventually(t, 60*time.Second, "a second dead letter", func() bool {
		return n.count("SELECT COUNT(*) FROM rowgear_failed_jobs WHERE state = 'dead'") == 1
	})
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `<!doctype html><form id="f" method="post" action="`+base+`/dead/purge">`+
			`<input name="token" value="`+token+`"><input name="older_than" value="1ms"></form>`+
			`<script>document.getElementById("f").submit()</script>`)
	}))
	defer evil.Close()
	do(t, ctx, "cross-site page", chromedp.Navigate(evil.URL))
	waitText(t, ctx, "body", "the console to refuse the cross-site POST", func(s string) bool { return strings.Contains(s, "cross-origin") })
	if c := n.count("SELECT COUNT(*) FROM rowgear_failed_jobs WHERE state = 'dead'"); c != 1 {
		t.Errorf("the cross-site purge deleted dead letters: %d left", c)
	}
	// The same POST from a script without a browser's headers still needs
	// the token.
	resp, err := http.PostForm(base+"/dead/purge", map[string][]string{"older_than": {"1ms"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a POST without the token: %s", resp.Status)
	}

	// Snapshots: request one from the page; it runs to its end.
	do(t, ctx, "snapshots", chromedp.Navigate(base+"/snapshots"), chromedp.WaitVisible(chromedp.CSS("#snap")))
	ready(t, ctx)
	do(t, ctx, "request a snapshot", chromedp.SetValue(chromedp.CSS(`#snap input[name="chunk"]`), "50"),
		chromedp.Click(chromedp.CSS(`#snap button`)))
	waitText(t, ctx, "#result-msg", "the snapshot request", func(s string) bool { return strings.Contains(s, "of Ticket requested (chunk 50") })
	waitText(t, ctx, "#snapshots", "the snapshot to end", func(s string) bool { return strings.Contains(s, "done") })
	shot(t, ctx, dir, "snapshots")

	do(t, ctx, "models", chromedp.Navigate(base+"/models"), chromedp.WaitVisible(chromedp.CSS("#model-Ticket")))
	waitText(t, ctx, "#model-Ticket", "the Ticket model", func(s string) bool {
		return strings.Contains(s, update) && strings.Contains(s, "TriggerUpdate") && strings.Contains(s, "binlog")
	})
	shot(t, ctx, dir, "models")
	t.Logf("screenshots in %s", dir)
}

// TestConsoleCommandNamesBadInput: the console's flags are checked before
// it listens.
func TestConsoleCommandNamesBadInput(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "token")
	os.WriteFile(empty, []byte("\n"), 0o600)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"console", "-h"}, 0, "--token-file"},
		{[]string{"console", "--addr", "1.2.3.4:5:6"}, 2, "--addr"},
		{[]string{"console", "--token-file", "/nonexistent/token"}, 1, "/nonexistent/token"},
		{[]string{"console", "--token-file", empty}, 1, "is empty"},
	} {
		var buf strings.Builder
		app, err := cli.New(cli.WithName("app"), cli.WithOutput(&buf, &buf))
		if err != nil {
			t.Fatal(err)
		}
		if code := app.Exit(context.Background(), c.args); code != c.code || !strings.Contains(buf.String(), c.want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s", c.args, code, c.code, c.want, buf.String())
		}
	}
}
