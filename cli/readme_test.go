package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// readmeFile is a file of the README's walk-through: a line naming it in
// backquotes and a colon, then its fenced block.
var readmeFile = regexp.MustCompile("(?m)^`([^`]+)`:\n\n```[a-z]*\n((?s:.*?))```\n")

// TestREADMEWalkThrough builds the README's application from the README's
// own text (its own module, with a replace to this checkout) and runs its
// go vet and go test: the handler test there uses rowgeartest, with no
// gearmand and no database.
func TestREADMEWalkThrough(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var files []string
	for _, m := range readmeFile.FindAllStringSubmatch(string(data), -1) {
		path := filepath.Join(dir, m[1])
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(m[2]), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, m[1])
	}
	for _, want := range []string{"main.go", "main_test.go", "config/gearman.yml", "migrations/00001_tasks.sql"} {
		if !strings.Contains(strings.Join(files, " "), want) {
			t.Fatalf("the README's walk-through has no %s (found %v)", want, files)
		}
	}
	// The module of testdata/app has the same requirements; its go.sum
	// lets the build run without the network.
	for _, f := range []string{"go.mod", "go.sum"} {
		data, err := os.ReadFile(filepath.Join("../testdata/app", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	replaceToCheckout(t, dir, repo)
	for _, args := range [][]string{{"vet", "."}, {"test", "-count=1", "."}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s in the README's application: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
