#!/usr/bin/env bash
# Runs the browser suite (tests/browser): the agent page served by switchboard-gateway, driven in headless
# Chromium through Selenium, against the services started as real processes on a throwaway RabbitMQ node.
#
#   tests/browser/run.sh [swift build options, e.g. --scratch-path .build -c release] [-- pytest options]
#
# Uses the system suite's virtualenv var/venv (with tests/browser/requirements.txt added), Debian's chromium and
# chromium-driver (scripts/install-deps.sh installs them), builds the package (switchboard-router, -notifier,
# -closer and -gateway) with the given options, and runs pytest. The node and the logs go under SWITCHBOARD_TEST_ROOT
# (scripts/test.sh sets it and stops the node whatever happens; without it the suite makes its own).
# Screenshots of every test go to artifacts/browser/.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

for program in "${CHROMIUM:-/usr/bin/chromium}" "${CHROMEDRIVER:-/usr/bin/chromedriver}"; do
    [[ -x $program ]] || { echo "browser tests: $program is missing (scripts/install-deps.sh installs chromium and chromium-driver)" >&2; exit 1; }
done

exec "$repo_root/tests/pytest-suite.sh" browser "$@"
