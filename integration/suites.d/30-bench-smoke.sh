#!/usr/bin/env bash
# limit: 1800 (a first run on a fresh machine builds youki: ~5 min on 2 idle cores)
# The spawn benchmark and the sandbox benchmark in smoke mode (few iterations), so that it cannot rot. Builds youki once
# (cached in /var/cache/testudo-bench).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
python3 "$here/integration/bench/bench.py" --smoke --runtimes testudo,runc,crun,youki
# The build-job sandbox against bubblewrap (issue 15), also in smoke mode.
exec python3 "$here/integration/bench/sandbox.py" --smoke
