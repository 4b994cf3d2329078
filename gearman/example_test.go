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

// What travels and how it decodes: strings raw, other values as plain JSON
// (what PHP's json_encode and json_decode speak); the decode target's type
// decides how a payload is read.
func ExampleUnserialize() {
	b, _ := gearman.Serialize([]string{"5a10", "c4c7"})
	fmt.Printf("%s\n", b)
	b, _ = gearman.Serialize("Hello!")
	fmt.Printf("%s\n", b)

	php := []byte(`{"md5":"5a10","n":2,"path":"a\/b","name":"\u00e9"}`) // json_encode output
	var h struct {
		MD5  string `json:"md5"`
		N    int    `json:"n"`
		Path string `json:"path"`
		Name string `json:"name"`
	}
	fmt.Println(gearman.Unserialize(php, &h), h)

	var s string // a string target always gets the payload raw
	_ = gearman.Unserialize([]byte(`"quoted"`), &s)
	fmt.Println(s)

	var n int // a raw string that happens to be JSON decodes as JSON
	_ = gearman.Unserialize([]byte("42"), &n)
	fmt.Println(n)

	var v []string // one that is not JSON does not
	err := gearman.Unserialize([]byte("!olleH"), &v)
	fmt.Println(errors.Is(err, gearman.ErrNotSerialized))

	var a any // any: the JSON value if the payload is JSON, else the string
	_ = gearman.Unserialize([]byte(`{"ok":true}`), &a)
	fmt.Println(a)
	_ = gearman.Unserialize([]byte("!olleH"), &a)
	fmt.Println(a)
	// Output:
	// ["5a10","c4c7"]
	// Hello!
	// <nil> {5a10 2 a/b é}
	// "quoted"
	// 42
	// true
	// map[ok:true]
	// !olleH
}
