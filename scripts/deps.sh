#!/usr/bin/env bash
# Installs the Debian packages lifecycle needs to build, test and run its demo, if any
# is missing. Debian 12 / Ubuntu with PostgreSQL 15 (PG_MAJOR=16 etc. for another).
set -euo pipefail
PG_MAJOR=${PG_MAJOR:-15}
packages=(
    g++ make cmake pkg-config
    "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" postgresql-client libpq-dev
    libboost-date-time-dev libboost-math-dev libnlopt-cxx-dev
    libgtest-dev
    sqlsmith
    nodejs npm python3-psycopg  # the example LISTEN clients (test/clients.sh)
    chromium fonts-dejavu-core   # the report's test: a headless screenshot, with a font
    # the Debian package and its suite (test/package.sh): dpkg-buildpackage, dh and
    # pg_buildext (dh --with pgxs_loop), jq for META.json
    dpkg-dev debhelper postgresql-server-dev-all jq
    debootstrap  # the versions suite's Debian tree of the other majors (test/versions.sh)
)
missing=()
for p in "${packages[@]}"; do
    # NodeSource's nodejs ships npm itself and conflicts with Debian's npm package.
    [ "$p" = npm ] && command -v npm >/dev/null && continue
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
