package retryguard_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rowgear/rowgear/internal/retryguard"
)

// Workers of one host starting together see a dead worker's journal once:
// the first to read it keeps it locked until its orphans are recorded, so
// one crash is not counted once per starting worker.
func TestDeadJournalIsReadByOneWorker(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "1-dead.journal"), []byte("S 1 fn\tevent-1\nS 2 fn\tevent-2\nE 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := retryguard.OpenJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if got := a.Orphans(); len(got) != 1 || got[0] != (retryguard.Orphan{Function: "fn", Unique: "event-1"}) {
		t.Fatalf("first worker's orphans %+v", got)
	}
	b, err := retryguard.OpenJournal(dir) // starts while a records its orphans
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := b.Orphans(); len(got) != 0 {
		t.Fatalf("second worker also took the dead journal's orphans: %+v", got)
	}
	if err := a.RemoveOrphans(); err != nil {
		t.Fatal(err)
	}
	c, err := retryguard.OpenJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.Orphans(); len(got) != 0 {
		t.Fatalf("orphans read again after they were recorded: %+v", got)
	}
	// Live journals are neither orphans nor removed.
	live, _ := filepath.Glob(filepath.Join(dir, "*.journal"))
	if len(live) != 3 {
		t.Fatalf("journals left: %v, want the three live ones", live)
	}
}
