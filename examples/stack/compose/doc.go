// Package compose is the end-to-end test of rowgear's docker-compose stack:
// it builds the images of docker-compose.yml, starts the stack under a
// project of its own, and checks with counts what docs/operating.md's compose
// section promises. It is built only with the compose tag, so `go test ./...`
// (make test) does not run it:
//
//	make compose-test          # = go test -tags compose ./examples/stack/compose
//
// It needs a Docker API (DOCKER_HOST, or /var/run/docker.sock) and
// docker-compose; CI brings them up with ../shared/tools/container-engine
// (.ci/run). Without them it fails, saying so. A strict trigger write
// refused at any point fails it, a gearmand being up all along; only the
// demo writer, the first writes after the stack's start, is run again (twice
// at most, reported) when one of its writes times out on a gearmand still
// starting. What it checks, in order:
//
//   - the demo writer runs (`--profile demo run --rm demo`) and its rows reach
//     their handlers through the trigger source (Article) and the binlog
//     source (Comment);
//   - `docker-compose restart binlogbridge dbworker` while a writer inserts
//     rows loses no row event: every row written is handled;
//   - with dbworker stopped, rows written are queued in the gearmands; after
//     `docker-compose kill gearmand` (SIGKILL) and a start, the SQLite queue
//     on its volume still holds every one of them, a started dbworker
//     handles them all, and rows written after it are handled too;
//   - with dbworker running and a writer inserting rows, gearmand-binlog
//     (the bridge's gearmand) is killed and later started again: every row
//     is handled, dbworker and binlogbridge log the server down and back;
//     then the same with gearmand, the UDF's first server;
//   - `docker-compose down -v` leaves no container, network or volume of the
//     project.
//
// Settings: ROWGEAR_COMPOSE_PROJECT (default rowgear-e2e) names the project
// and the image tag, so that other stacks on the same engine are untouched.
package compose
