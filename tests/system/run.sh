#!/usr/bin/env bash
# Runs the system suite (tests/system): black-box tests of the wire contract and crash tests, with pika as
# the client, against the services started as real processes on a throwaway RabbitMQ node.
#
#   tests/system/run.sh [swift build options, e.g. --scratch-path .build -c release] [-- pytest options]
#
# Creates the virtualenv var/venv from tests/system/requirements.txt, builds switchboard-router, -notifier and
# -closer with the given options, and runs pytest. The node and the logs go under SWITCHBOARD_TEST_ROOT
# (scripts/test.sh sets it and stops the node whatever happens; without it the suite makes its own).
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

venv=$repo_root/var/venv
if [[ ! -x $venv/bin/python ]]; then
    # Debian's python3 makes virtualenvs only with its python3-venv package.
    python3 -m venv "$venv" || { echo "system tests: cannot create $venv (on Debian: apt-get install python3-venv)" >&2; exit 1; }
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/system/requirements.txt

for product in switchboard-router switchboard-notifier switchboard-closer; do
    swift build "${build_options[@]}" --product "$product"
done
SWITCHBOARD_BIN_DIR=$(swift build "${build_options[@]}" --show-bin-path)
export SWITCHBOARD_BIN_DIR

exec "$venv/bin/python" -m pytest tests/system -p no:cacheprovider -rfE "${pytest_options[@]}"
