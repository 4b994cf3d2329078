// Package models is rowgear's bundled example application, built on rowgear's public
// API only, as an application of your own would be: the Article model of the
// seed README (row events from triggers, the record job publish, the table
// job buildFeed), the Comment model (row events from the binlog), the seed's
// Worker1 functions, its schema and trigger migrations (migrations/), its
// gearman.yml (config/), its worker binary (cmd/dbworker: `dbworker
// --config=example2`) and the demo writer (cmd/demo).
package models

import "embed"

// Migrations are the application's goose migrations, numbered from 00001:
// the schema and the Article triggers that `dbworker triggers generate`
// wrote. rowgear's own migrations run before them, versioned apart.
//
//go:embed migrations/*.sql
var Migrations embed.FS
