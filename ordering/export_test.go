package ordering

import "context"

// Multi reports whether o takes the one-round-trip path.
func (o *Orderer) Multi(ctx context.Context) bool { return o.multi(ctx) }
