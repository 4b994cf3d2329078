package triggers

import (
	"fmt"
	"slices"

	"github.com/rowgear/rowgear/config"
)

// Specs returns the trigger specs of the named models, or of every model
// whose source is "trigger" when names is empty, sorted by model name.
// A named model whose source is binlog is an error: it must not have triggers.
func Specs(cfg *config.Config, names ...string) ([]Spec, error) {
	if len(names) == 0 {
		for name, m := range cfg.Models {
			if isTrigger(m) {
				names = append(names, name)
			}
		}
	}
	names = slices.Clone(names)
	slices.Sort(names)
	names = slices.Compact(names)
	ns := cfg.Namespace
	if ns == "" {
		ns = config.DefaultNamespace
	}
	specs := make([]Spec, 0, len(names))
	for _, name := range names {
		m, ok := cfg.Models[name]
		if !ok {
			return nil, fmt.Errorf("model %s is not in the models section of %s", name, cfg.File)
		}
		if !isTrigger(m) {
			return nil, fmt.Errorf("model %s: source is %s, not trigger", name, m.Source)
		}
		specs = append(specs, Spec{
			Namespace: ns, Mode: cfg.Triggers.Mode, Model: name,
			Schema: m.Schema, Table: m.Table, Events: m.Events, Columns: m.Columns,
		})
	}
	return specs, nil
}

func isTrigger(m config.Model) bool { return m.Source == "" || m.Source == "trigger" }
