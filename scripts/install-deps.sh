#!/usr/bin/env bash
# Installs the Debian packages the project needs, only those missing; silent when all are present.
set -euo pipefail

packages=(rabbitmq-server librabbitmq-dev amqp-tools pkg-config)
# `make up` asks each service's /health/ready with curl.
packages+=(curl)
# Certificates for a node's TLS listener (scripts/rabbitmq-node.sh, SB_AMQPS_PORT).
packages+=(openssl)
# The browser suite drives the agent page in headless Chromium through its WebDriver.
packages+=(chromium chromium-driver)
# The system suite makes a virtualenv; Debian's own python3 needs python3-venv for that.
python3 -c 'import ensurepip, venv' 2>/dev/null || packages+=(python3-venv)

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
((${#missing[@]} == 0)) && exit 0

if [[ $EUID -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null; then
    as_root=(sudo)
else
    echo "install-deps: missing ${missing[*]}; install them as root" >&2
    exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
