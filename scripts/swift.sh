#!/usr/bin/env bash
# `swift` with the arguments given, in a TMPDIR of its own that goes when it ends: the Swift driver leaves an
# empty TemporaryDirectory.* folder in TMPDIR each time it runs (swift-driver issues 1720 and 2049), six or so
# per `swift build`. Every script and make target runs swift through this.
set -euo pipefail
tmp=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-swift.XXXXXX")
# Open to the broker's user: a test run by hand (`scripts/swift.sh test --filter NAME`) starts its nodes in TMPDIR.
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
TMPDIR=$tmp swift "$@"
