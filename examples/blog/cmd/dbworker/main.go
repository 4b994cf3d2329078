// Command dbworker is the example application's binary: rowgear's commands
// (worker sets, migrate, triggers, dead, bridge) with the blog's models and
// migrations. `dbworker --config=example2 --count=0 --timeout=-1 --verbose`
// runs its models; `dbworker -h` lists the commands.
package main

import (
	"github.com/rowgear/rowgear/cli"
	"github.com/rowgear/rowgear/examples/blog"
)

func main() {
	cli.Main(
		cli.WithName("dbworker"),
		cli.WithRegister(blog.Register),
		cli.WithMigrations(blog.Migrations, "migrations"),
	)
}
