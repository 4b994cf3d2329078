package status

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"time"

	"github.com/rowgear/rowgear/bridge"
)

// BridgeInstance is one bridge of a high-availability group (binlog.ha), as
// it last reported itself.
type BridgeInstance struct {
	Instance string  `json:"instance"` // host:pid:random, or --instance
	Role     string  `json:"role"`     // active, standby or stopped
	Epoch    int64   `json:"epoch"`    // the lease election it won (active) or last saw
	Position string  `json:"position,omitempty"`
	SeenAgo  float64 `json:"seen_seconds_ago"`
	Holder   bool    `json:"holder"` // holds the unexpired lease
}

// instances reads the group's bridges (BridgesTable), if any ran with
// binlog.ha; stopped ones and ones silent for more than a day are left out.
func (r *Report) instances(ctx context.Context, db *sql.DB, b *Bridge) {
	rows, err := db.QueryContext(ctx, "SELECT x.instance, x.role, x.epoch, x.position, "+
		"TIMESTAMPDIFF(MICROSECOND, x.seen_at, NOW(6)) / 1e6, COALESCE(l.holder = x.instance AND l.epoch = x.epoch AND l.expires_at > NOW(6), 0) "+
		"FROM `"+bridge.BridgesTable+"` x LEFT JOIN `"+bridge.LeaseTable+"` l ON l.server_id = x.server_id "+
		"WHERE x.server_id = ? AND x.role <> 'stopped' AND x.seen_at > NOW(6) - INTERVAL 1 DAY ORDER BY x.role, x.instance", b.ServerID)
	if err != nil {
		return // no HA tables: binlog.ha never ran
	}
	defer rows.Close()
	active := 0
	for rows.Next() {
		var in BridgeInstance
		if err := rows.Scan(&in.Instance, &in.Role, &in.Epoch, &in.Position, &in.SeenAgo, &in.Holder); err != nil {
			r.problem("bridge instances: %v", err)
			return
		}
		if in.Holder && in.SeenAgo < 10 {
			active++
		}
		b.Instances = append(b.Instances, in)
	}
	if len(b.Instances) > 0 && active == 0 {
		r.problem("bridge (server_id %d): no active bridge holds the lease (binlog.ha): %d bridge(s) reported in the last day", b.ServerID, len(b.Instances))
	}
}

func writeInstances(w io.Writer, b *Bridge) {
	for _, in := range b.Instances {
		role := in.Role
		if in.Holder {
			role += " (lease holder)"
		}
		fmt.Fprintf(w, "  %s\t%s epoch %d\t%s\tseen %s ago\t\n", in.Instance, role, in.Epoch,
			in.Position, (time.Duration(in.SeenAgo * float64(time.Second))).Round(100*time.Millisecond))
	}
}
