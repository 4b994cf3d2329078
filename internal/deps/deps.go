// Package deps pins the modules the packages under construction import, so
// go.mod stays stable while they land. Removed once every import is real.
package deps

import (
	_ "github.com/go-mysql-org/go-mysql/canal"
	_ "github.com/go-mysql-org/go-mysql/mysql"
	_ "github.com/go-mysql-org/go-mysql/replication"
	_ "github.com/go-sql-driver/mysql"
	_ "github.com/mikespook/gearman-go/client"
	_ "github.com/mikespook/gearman-go/worker"
	_ "github.com/pressly/goose/v3"
	_ "gopkg.in/yaml.v3"
)
