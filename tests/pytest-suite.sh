#!/usr/bin/env bash
# Runs one pytest suite under tests/ against executables of this package, built first:
#
#   tests/pytest-suite.sh SUITE [swift build options, e.g. --scratch-path .build] [-- pytest options]
#
# Creates the virtualenv var/venv if needed, installs tests/SUITE/requirements.txt into it, builds the package
# with the given options, points SWITCHBOARD_BIN_DIR at its executables and runs pytest on tests/SUITE. The
# whole package in one `swift build`: SwiftPM plans a build for 6-7 s before it looks at a file, once per
# `swift build`, so one build per product cost that much again for each even when nothing had changed.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

suite=$1
shift
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
    python3 -m venv "$venv" || { echo "$suite tests: cannot create $venv (on Debian: apt-get install python3-venv)" >&2; exit 1; }
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "tests/$suite/requirements.txt"

scripts/swift.sh build "${build_options[@]}"
SWITCHBOARD_BIN_DIR=$(scripts/swift.sh build "${build_options[@]}" --show-bin-path)
export SWITCHBOARD_BIN_DIR

# Under make test, pytest's tmp_path folders go under the run's root and with it (by hand, pytest keeps its
# last three runs' in the temporary folder).
basetemp=()
if [[ -n ${SWITCHBOARD_TEST_ROOT:-} ]]; then basetemp=(--basetemp "$SWITCHBOARD_TEST_ROOT/pytest-$suite"); fi

exec "$venv/bin/python" -m pytest "tests/$suite" -p no:cacheprovider -rfE "${basetemp[@]}" "${pytest_options[@]}"
