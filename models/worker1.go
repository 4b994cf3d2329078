package models

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"

	"github.com/rowgear/rowgear/gearman"
)

// Reverse is the seed's Worker1::reverse: the workload reversed, sent raw.
func Reverse(_ context.Context, job *gearman.Job) (any, error) {
	job.Notify("Worker1.reverse")
	r := []rune(string(job.Workload))
	for i, k := 0, len(r)-1; i < k; i, k = i+1, k-1 {
		r[i], r[k] = r[k], r[i]
	}
	return string(r), nil
}

// Hash is the seed's Worker1::hash: md5 and sha1 of the workload, as a
// JSON array (PHP's json_decode reads it; our client decodes it).
func Hash(_ context.Context, job *gearman.Job) (any, error) {
	job.Notify("Worker1.hash")
	m, s := md5.Sum(job.Workload), sha1.Sum(job.Workload)
	return []string{hex.EncodeToString(m[:]), hex.EncodeToString(s[:])}, nil
}
