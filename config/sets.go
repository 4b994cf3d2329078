package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// ServerAddrs returns the "host:port" addresses of connection name; "" means
// "default", as sfGearmanClient::getInstance() with no argument. The slice is
// a copy.
func (c *Config) ServerAddrs(name string) ([]string, error) {
	if name == "" {
		name = "default"
	}
	addrs, ok := c.Servers[name]
	if !ok {
		return nil, fmt.Errorf("%w %q in %s (have %s)", ErrUnknownServer, name, c.File, keys(c.Servers))
	}
	return slices.Clone(addrs), nil
}

// WorkerSet returns the worker set run by `--config=name`.
func (c *Config) WorkerSet(name string) (WorkerSet, error) {
	s, ok := c.Workers[name]
	if !ok {
		return nil, fmt.Errorf("%w %q under worker: in %s (have %s)", ErrUnknownSet, name, c.File, keys(c.Workers))
	}
	return s, nil
}

// DBWorkerSet returns the dbworker set run by `--config=name`.
//
// An empty name is the seed's gearman:worker-doctrine without --config: one
// set with every model declared under models: (all events) and every set's
// jobs merged, so a single worker serves everything.
func (c *Config) DBWorkerSet(name string) (DBWorkerSet, error) {
	if name != "" {
		s, ok := c.DBWorkers[name]
		if !ok {
			return nil, fmt.Errorf("%w %q under doctrine: or dbworker: in %s (have %s)", ErrUnknownSet, name, c.File, keys(c.DBWorkers))
		}
		return s, nil
	}
	all := DBWorkerSet{}
	for m := range c.Models {
		all[m] = ModelJobs{AllEvents: true}
	}
	for _, set := range slices.Sorted(maps.Keys(c.DBWorkers)) { // sorted: job order must not depend on map order
		for m, j := range c.DBWorkers[set] {
			all[m] = all[m].union(j)
		}
	}
	return all, nil
}

// union merges the events and jobs of o into j, keeping first-seen order.
func (j ModelJobs) union(o ModelJobs) ModelJobs {
	out := ModelJobs{AllEvents: j.AllEvents || o.AllEvents}
	out.Events = appendNew(slices.Clone(j.Events), o.Events)
	out.Jobs = appendNew(slices.Clone(j.Jobs), o.Jobs)
	return out
}

func appendNew(dst, src []string) []string {
	for _, s := range src {
		if !slices.Contains(dst, s) {
			dst = append(dst, s)
		}
	}
	return dst
}

func keys[V any](m map[string]V) string {
	if len(m) == 0 {
		return "none"
	}
	return strings.Join(slices.Sorted(maps.Keys(m)), ", ")
}
