package events

// FuncName returns the gearman function for a model's row event or job:
// "<namespace>.<Model>.<op|job>", e.g. "app.Article.update". It does not
// validate: gearman.yml's names are checked when it is loaded.
func FuncName(namespace, model, opOrJob string) string {
	return namespace + "." + model + "." + opOrJob
}

// OpBatch is the function of a batch job, "<namespace>.<Model>.batch":
// several consecutive events of one model, in the order binlogbridge read
// them, as a JSON array of their envelopes, each byte for byte as its own
// job would carry it (at most MaxBatch). It is not an event's op: no envelope
// has it.
const OpBatch = "batch"

// MaxBatch is the most events one batch job carries (gearman.yml's batch:
// at most this).
const MaxBatch = 1000
