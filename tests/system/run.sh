#!/usr/bin/env bash
# Runs the system suite (tests/system): black-box tests of the wire contract and crash tests, with pika as
# the client, against the services started as real processes on a throwaway RabbitMQ node.
#
#   tests/system/run.sh [swift build options, e.g. --scratch-path .build -c release] [-- pytest options]
#
# Creates the virtualenv var/venv from tests/system/requirements.txt, builds the package (switchboard-router,
# -notifier and -closer, and switchboard-demo and the ops CLI switchboard, which tests run against them) with
# the given options, and runs pytest. The node and the logs go under SWITCHBOARD_TEST_ROOT (scripts/test.sh sets it and
# stops the node whatever happens; without it the suite makes its own, and removes it after a pass).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
exec "$repo_root/tests/pytest-suite.sh" system "$@"
