package gearman_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/rowgear/rowgear/gearman"
)

// A worker for the seed's "reverse" function, and a client calling it.
func Example() {
	ctx := context.Background()
	servers := []string{"127.0.0.1:4730"}

	w := gearman.NewWorker(servers, gearman.WithConcurrency(4), gearman.WithMaxJobs(100))
	w.Register("reverse", func(ctx context.Context, job *gearman.Job) (any, error) {
		r := []rune(string(job.Workload))
		for i, k := 0, len(r)-1; i < k; i, k = i+1, k-1 {
			r[i], r[k] = r[k], r[i]
		}
		return string(r), nil // a string goes back raw; any other value serialized
	})
	go w.Run(ctx) // until ctx ends, 100 jobs are done, or an idle timeout

	c := gearman.NewClient(servers)
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second) // Task waits for the result
	defer cancel()
	r, err := c.Task(ctx, "reverse", "Hello!", gearman.High)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.String()) // !olleH
}

// The seed's message queue: Put anywhere, Get with a timeout.
func ExampleQueue() {
	ctx := context.Background()
	q := gearman.NewQueue(gearman.NewClient([]string{"127.0.0.1:4730"}))
	if err := q.Put(ctx, "q1", "urgent", gearman.High); err != nil {
		log.Fatal(err)
	}
	m, err := q.Get(ctx, "q1", 10*time.Second)
	if errors.Is(err, gearman.ErrTimeout) {
		return // waited 10 s, no message
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(m.Data))
}
