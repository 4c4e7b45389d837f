#!/usr/bin/env bash
# `swift` with the arguments given, for every script and make target. Two things differ from calling it bare:
#
# - It runs in a TMPDIR of its own that goes when it ends: the Swift driver leaves an empty
#   TemporaryDirectory.* folder in TMPDIR each time it runs (swift-driver issues 1720 and 2049), six or so
#   per `swift build`.
# - The build runs with a fixed hash seed (SWIFT_DETERMINISTIC_HASHING). SwiftPM before 6.4 passes a
#   package's traits to the compiler in the order of a Set, which a fresh process draws anew
#   (swift-package-manager issue 10525); with two traits (swift-configuration's JSON and
#   CommandLineArguments) half of all builds saw the Configuration module's command as changed and
#   recompiled it and everything above it: 15-30 s per product with nothing changed. The seed is for the
#   build alone, not for the programs it makes: `swift test` and `swift run` build first, with it, then run
#   with --skip-build, without it, so tests and tools meet random seeds as the services do when deployed.
set -euo pipefail
tmp=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-swift.XXXXXX")
# Open to the broker's user: a test run by hand (`scripts/swift.sh test --filter NAME`) starts its nodes in TMPDIR.
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
export TMPDIR=$tmp

swift_build() { SWIFT_DETERMINISTIC_HASHING=1 swift build "$@"; }

command=${1:-}
case $command in
build)
    shift
    swift_build "$@"
    ;;
test | run)
    shift
    # The options `swift build` takes too; for `swift run`, the first other word is the product, and what
    # follows it is the product's own arguments.
    build_options=()
    product=()
    arguments=("$@")
    for ((i = 0; i < ${#arguments[@]}; i++)); do
        case ${arguments[i]} in
            --scratch-path | -c | --configuration | --sanitize | -Xswiftc | -Xcc | -Xlinker | -j | --jobs)
                build_options+=("${arguments[i]}" "${arguments[i + 1]:?${arguments[i]} needs a value}")
                i=$((i + 1))
                ;;
            --scratch-path=* | --configuration=* | --sanitize=* | --jobs=*) build_options+=("${arguments[i]}") ;;
            -*) ;;
            *) if [[ $command == run ]]; then product=(--product "${arguments[i]}"); break; fi ;;
        esac
    done
    if [[ $command == test ]]; then
        swift_build --build-tests "${build_options[@]}"
    else
        swift_build "${build_options[@]}" "${product[@]}"
    fi
    swift "$command" --skip-build "$@"
    ;;
*)
    swift "$@"
    ;;
esac
