#!/usr/bin/env bash
# Runs the browser suite (tests/browser): the agent page served by switchboard-gateway, driven in headless
# Chromium through Selenium, against the services started as real processes on a throwaway RabbitMQ node.
#
#   tests/browser/run.sh [swift build options, e.g. --scratch-path .build -c release] [-- pytest options]
#
# Uses the system suite's virtualenv var/venv (with tests/browser/requirements.txt added), Debian's chromium and
# chromium-driver (scripts/install-deps.sh installs them), builds switchboard-router, -notifier, -closer and
# -gateway with the given options, and runs pytest. The node and the logs go under SWITCHBOARD_TEST_ROOT
# (scripts/test.sh sets it and stops the node whatever happens; without it the suite makes its own).
# Screenshots of every test go to artifacts/browser/.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo_root"

build_options=()
pytest_options=()
while (($#)); do
    if [[ $1 == -- ]]; then
        shift
        pytest_options=("$@")
        break
    fi
    build_options+=("$1")
    shift
done

for program in "${CHROMIUM:-/usr/bin/chromium}" "${CHROMEDRIVER:-/usr/bin/chromedriver}"; do
    [[ -x $program ]] || { echo "browser tests: $program is missing (scripts/install-deps.sh installs chromium and chromium-driver)" >&2; exit 1; }
done

venv=$repo_root/var/venv
if [[ ! -x $venv/bin/python ]]; then
    # Debian's python3 makes virtualenvs only with its python3-venv package.
    python3 -m venv "$venv" || { echo "browser tests: cannot create $venv (on Debian: apt-get install python3-venv)" >&2; exit 1; }
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/browser/requirements.txt

for product in switchboard-router switchboard-notifier switchboard-closer switchboard-gateway; do
    swift build "${build_options[@]}" --product "$product"
done
SWITCHBOARD_BIN_DIR=$(swift build "${build_options[@]}" --show-bin-path)
export SWITCHBOARD_BIN_DIR

exec "$venv/bin/python" -m pytest tests/browser -p no:cacheprovider -rfE "${pytest_options[@]}"
