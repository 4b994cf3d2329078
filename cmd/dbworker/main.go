// Command dbworker is the example application's binary: rowgear's commands
// (worker sets, migrate, triggers, dead, bridge) with the bundled models and
// migrations. `dbworker --config=example2 --count=0 --timeout=-1 --verbose`
// runs its models; `dbworker -h` lists the commands.
package main

import (
	"github.com/rowgear/rowgear/cli"
	"github.com/rowgear/rowgear/models"
)

func main() {
	cli.Main(
		cli.WithName("dbworker"),
		cli.WithRegister(models.Register),
		cli.WithMigrations(models.Migrations, "migrations"),
	)
}
