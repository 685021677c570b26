#!/usr/bin/env bash
# Install the Debian packages listed in platform/apt-packages.txt that are missing (one name per line, # comments).
# Idempotent and quiet when everything is present; runs `apt-get update` only when something must be installed.
#
#   platform/install-debs.sh            # as root (or via sudo when available)
set -euo pipefail

LIST="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/apt-packages.txt"
export DEBIAN_FRONTEND=noninteractive

missing=()
while read -r line || [[ -n "$line" ]]; do
    package="${line%%#*}"
    package="${package//[[:space:]]/}"
    [[ -n "$package" ]] || continue
    if ! dpkg -s "$package" 2>/dev/null | grep -q '^Status: install ok installed'; then
        missing+=("$package")
    fi
done <"$LIST"

[[ ${#missing[@]} -eq 0 ]] && exit 0

as_root=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { echo "install-debs.sh: need root to install: ${missing[*]}" >&2; exit 1; }
    as_root=(sudo --preserve-env=DEBIAN_FRONTEND)
fi
echo "install-debs.sh: installing ${missing[*]}"
"${as_root[@]}" apt-get update -qq
# Wait for a concurrent apt/dpkg (another install on the same machine) instead of failing at once.
"${as_root[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
