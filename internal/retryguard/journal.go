package retryguard

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/rowgear/rowgear/internal/ids"
)

// Journal notes each job a worker starts and ends in a file of its own,
// locked while the worker lives. A process that dies mid-job leaves a start
// with no end; the next worker to open the directory finds that file
// unlocked and reports the job as an orphan. A write per start and end is a
// syscall without fsync: it outlives the process, which is what matters.
type Journal struct {
	dir     string
	mu      sync.Mutex
	f       *os.File
	path    string // f's path (f.Name() is the name it was created under)
	seq     uint64
	running map[uint64]string // seq → "function\tunique"
	ends    int
	orphans []Orphan
	// dead are the journals of dead workers, kept open and locked until
	// RemoveOrphans deletes them, so that a worker starting meanwhile does
	// not read (and count) the same orphans again.
	dead []*os.File
}

// Orphan is a job that was running when its worker died.
type Orphan struct{ Function, Unique string }

// OpenJournal opens a new journal in dir (created if needed) and reads the
// journals that dead workers left there.
func OpenJournal(dir string) (*Journal, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("retry: journal dir: %w", err)
	}
	j := &Journal{dir: dir, running: map[uint64]string{}}
	old, _ := filepath.Glob(filepath.Join(dir, "*.journal"))
	for _, p := range old {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil || !stillAt(f, p) {
			f.Close() // a live worker's, or one another worker just recorded and removed
			continue
		}
		j.orphans = append(j.orphans, readOrphans(f)...)
		j.dead = append(j.dead, f)
	}
	// Created under a name the glob above does not match, and locked before
	// it is renamed into view: no starting worker can take it for a dead one.
	name := filepath.Join(dir, fmt.Sprintf("%d-%s.journal", os.Getpid(), ids.New()[:8]))
	f, err := os.OpenFile(name+".new", os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	if err == nil {
		if err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
			err = os.Rename(name+".new", name)
		}
		if err != nil {
			f.Close()
			os.Remove(name + ".new")
		}
	}
	if err != nil {
		j.closeDead()
		return nil, fmt.Errorf("retry: journal: %w", err)
	}
	j.f, j.path = f, name
	return j, nil
}

// stillAt reports whether f is still the file at path p.
func stillAt(f *os.File, p string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(p)
	return err == nil && os.SameFile(a, b)
}

func (j *Journal) closeDead() {
	for _, f := range j.dead {
		f.Close()
	}
	j.dead = nil
}

func readOrphans(f *os.File) []Orphan {
	open := map[string]string{}
	var order []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		kind, rest, _ := strings.Cut(sc.Text(), " ")
		seq, job, _ := strings.Cut(rest, " ")
		switch kind {
		case "S":
			open[seq] = job
			order = append(order, seq)
		case "E":
			delete(open, seq)
		}
	}
	var out []Orphan
	for _, seq := range order {
		if job, ok := open[seq]; ok {
			fn, unique, _ := strings.Cut(job, "\t")
			out = append(out, Orphan{fn, unique})
		}
	}
	return out
}

// Orphans returns the jobs dead workers were running.
func (j *Journal) Orphans() []Orphan { return j.orphans }

// RemoveOrphans deletes the dead workers' journals once their orphans are
// recorded elsewhere.
func (j *Journal) RemoveOrphans() error {
	for len(j.dead) > 0 {
		f := j.dead[0]
		if err := os.Remove(f.Name()); err != nil && !os.IsNotExist(err) {
			return err
		}
		f.Close()
		j.dead = j.dead[1:]
	}
	j.orphans = nil
	return nil
}

// Start notes that a job starts and returns its sequence number for End.
func (j *Journal) Start(fn, unique string) uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.seq++
	job := fn + "\t" + unique
	j.running[j.seq] = job
	fmt.Fprintf(j.f, "S %d %s\n", j.seq, job)
	return j.seq
}

// End notes that job seq ended (reported to gearmand one way or another).
func (j *Journal) End(seq uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.running, seq)
	fmt.Fprintf(j.f, "E %d\n", seq)
	j.ends++
	if j.ends >= 4096 { // compact: keep only what still runs
		j.ends = 0
		j.f.Truncate(0)
		j.f.Seek(0, 0)
		for s, job := range j.running {
			fmt.Fprintf(j.f, "S %d %s\n", s, job)
		}
	}
}

// Close removes the journal: a worker that stops cleanly leaves nothing.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.closeDead()
	j.f.Close()
	return os.Remove(j.path)
}
