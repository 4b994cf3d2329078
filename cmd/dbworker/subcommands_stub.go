package main

import (
	"context"
	"errors"
	"io"
)

// Placeholders until the trigger source lands; replaced by migrate.go and
// triggers.go.
func migrateCmd(ctx context.Context, args []string, stdout io.Writer) error {
	return errors.New("migrate: not built yet")
}

func triggersCmd(ctx context.Context, args []string, stdout io.Writer) error {
	return errors.New("triggers: not built yet")
}
