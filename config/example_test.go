package config_test

import (
	"fmt"
	"log"

	"github.com/rowgear/rowgear/config"
)

// Parse a gearman.yml in the seed's format for the prod environment and
// look up what `--config=example1` and `--config=example2` run.
func ExampleParse() {
	yml := `all:
  worker:
    example1:
      reverse: [Worker1, reverse]
      hash: [Worker1, hash]
  doctrine:
    example2:
      Article: [buildFeed, publish, ~]
  models:
    Article: {table: articles, events: [insert, update, delete], source: trigger}
  triggers:
    mode: strict
`
	c, err := config.Parse("config/gearman.yml", []byte(yml), "prod")
	if err != nil {
		log.Fatal(err)
	}

	workers, err := c.WorkerSet("example1")
	if err != nil {
		log.Fatal(err)
	}
	for _, fn := range []string{"hash", "reverse"} {
		fmt.Printf("%s -> %s\n", fn, workers[fn].Name())
	}

	set, err := c.DBWorkerSet("example2")
	if err != nil {
		log.Fatal(err)
	}
	article := set["Article"]
	fmt.Println("Article: all events:", article.AllEvents, "jobs:", article.Jobs)
	fmt.Println("Article emits", c.Models["Article"].Events, "from", c.Models["Article"].Source)
	fmt.Println("namespace:", c.Namespace, "trigger mode:", c.Triggers.Mode)
	// Output:
	// hash -> Worker1.hash
	// reverse -> Worker1.reverse
	// Article: all events: true jobs: [buildFeed publish]
	// Article emits [insert update delete] from trigger
	// namespace: rowgear trigger mode: strict
}

// A mistake is reported with the file, the line and the key.
func ExampleParse_error() {
	yml := `all:
  worker:
    example1:
      reverse: {Worker1: reverse}
`
	_, err := config.Parse("config/gearman.yml", []byte(yml), "")
	fmt.Println(err)
	// Output:
	// config/gearman.yml:4: all.worker.example1.reverse: want [Handler, method] or a callback name, got a mapping
}

// The environment section is merged over all:, key by key.
func ExampleParse_environments() {
	yml := `all:
  server:
    default: 127.0.0.1
    queue: 127.0.0.1:4731
prod:
  server:
    default: [gm1.internal, gm2.internal:4740]
`
	c, err := config.Parse("gearman.yml", []byte(yml), "prod")
	if err != nil {
		log.Fatal(err)
	}
	for _, name := range []string{"default", "queue"} {
		addrs, _ := c.ServerAddrs(name)
		fmt.Println(name, addrs)
	}
	// Output:
	// default [gm1.internal:4730 gm2.internal:4740]
	// queue [127.0.0.1:4731]
}
