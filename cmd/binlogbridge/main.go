// Command binlogbridge tails the row-based binlog of MySQL/MariaDB and
// publishes every committed change of the configured tables as a gearman
// background job <namespace>.<Model>.<op> carrying the event envelope
// (source "binlog"). It needs no application code: gearman.yml's models
// section says what to publish. An application's own binary runs the same
// thing as its `bridge` command. See package bridge for position and
// ordering.
package main

import "github.com/rowgear/rowgear/cli"

func main() { cli.BridgeMain() }
