package config

import (
	"cmp"
	"os"

	"github.com/spf13/pflag"
)

// Flags are the command-line flags every rowgear command uses to find its
// configuration: --file (env ROWGEAR_CONFIG) and --env (env ROWGEAR_ENV).
type Flags struct {
	File string
	Env  string
}

// Register adds --file and --env to fs.
func (f *Flags) Register(fs *pflag.FlagSet) {
	fs.StringVar(&f.File, "file", cmp.Or(os.Getenv("ROWGEAR_CONFIG"), "config/gearman.yml"), "path of gearman.yml (env ROWGEAR_CONFIG)")
	fs.StringVar(&f.Env, "env", cmp.Or(os.Getenv("ROWGEAR_ENV"), "prod"), "environment section merged over all: (env ROWGEAR_ENV)")
}

// Load loads the configuration the flags name.
func (f *Flags) Load() (*Config, error) { return Load(f.File, f.Env) }
