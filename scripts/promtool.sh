#!/usr/bin/env bash
# Prints the path of a promtool, the checker of Prometheus rule files: the one on the PATH, or one taken from
# Debian's `prometheus` package into var/tools (the package itself is not installed: it would start a
# Prometheus server).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if command -v promtool >/dev/null; then
    command -v promtool
    exit 0
fi
tool=$repo_root/var/tools/promtool
if [[ ! -x $tool ]]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    # apt-get download needs the package lists; a fresh machine has none yet.
    if ! (cd "$work" && apt-get download -qq prometheus >/dev/null 2>&1); then
        if [[ $EUID -eq 0 ]]; then apt-get update -qq; else sudo apt-get update -qq; fi
        (cd "$work" && apt-get download -qq prometheus >/dev/null)
    fi
    dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
    mkdir -p "$(dirname "$tool")"
    cp "$work/root/usr/bin/promtool" "$tool.part"
    mv "$tool.part" "$tool"
fi
echo "$tool"
