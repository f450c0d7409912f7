#!/usr/bin/env bash
# run.sh runs the benchmark behind `make bench` (which builds bin/promadapter and the test
# binaries first) and rewrites the generated part of docs/benchmarks.md and docs/benchmarks.svg.
#
#   bash test/bench/run.sh                                          # 1k, 10k, 30k pods, discovery, backends, adaptive plan, 1,000 HPAs (~20 min on 2 CPUs)
#   bash test/bench/run.sh -merge /tmp/promadapter-bench-*/results.json   # also show sizes measured alone (-sizes 150000, ~30 min)
#   bash test/bench/run.sh -sizes 1000 -discovery-series 10000      # a quick look
#   bash test/bench/run.sh -render-only /tmp/promadapter-bench-*/results.json
#
# Arguments are passed to the benchmark program (test/bench); `go run ./test/bench -help` lists them.
# The work directory (clusters, Prometheus data, logs) is temporary; results.json stays in it.
set -euo pipefail
cd "$(dirname "$0")/../.."

export PROMADAPTER_BIN=${PROMADAPTER_BIN:-$PWD/bin/promadapter}
if [[ ! -x "$PROMADAPTER_BIN" ]]; then
  echo "run.sh: $PROMADAPTER_BIN is missing; run \`make build\` first (\`make bench\` does)" >&2
  exit 1
fi

build_dir=$(mktemp -d)
trap 'rm -rf "$build_dir"' EXIT
go build -o "$build_dir/bench" ./test/bench
"$build_dir/bench" -report docs/benchmarks.md -plot docs/benchmarks.svg "$@"
