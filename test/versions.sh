#!/usr/bin/env bash
# The extension on the other PostgreSQL majors: every major that Debian's registry offers
# (its suites sid, experimental, trixie and bookworm) besides this machine's own.
#   test/versions.sh [MAJOR ...]       (default: every such major found)
#   VERSIONS_CACHE    where the Debian tree is kept (default /var/cache/lifecycle-versions)
#   VERSIONS_SUITES   scripts/test.sh's suites run on each major (default: regress
#                     integration isolation); VERSIONS_UPGRADE=no skips the pg_upgrade
# The servers are Debian's own packages, installed into a Debian sid tree (debootstrap)
# outside the clone, built once per machine and reused when present: Debian 12 has no
# other major, and the source packages of 17 and 19 could not be downloaded (their
# files answer 404), while their binary packages can. In that tree, for each major, a
# copy of the sources is built with the project's flags (WERROR=1) by the tree's own
# compiler, installed, and `scripts/test.sh SUITES` runs against that major's server;
# then test/pg_upgrade.sh upgrades a cluster from this machine's major to the newest
# one. Prints per major what passed, and ends with "versions: N passed, N failed" (the
# sum of the suites' counts). Needs root (debootstrap, chroot, mount).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
cache=${VERSIONS_CACHE:-/var/cache/lifecycle-versions}
tree=$cache/sid
suites=(${VERSIONS_SUITES:-regress integration isolation})
# Bump when the tree's contents below change: a tree of an older layout is made again.
layout=1
passed=0
failed=0
fail() { echo "versions: $*"; echo "versions: $passed passed, $((failed + 1)) failed"; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "versions: SKIP (needs root for debootstrap and chroot)"; exit 0; }

host_major=$(pg_config --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
# The mirror this machine's apt uses, not one named here.
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | tr ' ' '\n' | grep -v security | head -n 1)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || fail "no Debian mirror in this machine's apt sources"

mounted=()
unmount_all() {
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount "${mounted[$i]}" 2>/dev/null; done
    mounted=()
}
trap unmount_all EXIT
mount_in_tree() {
    mountpoint -q "$tree/proc" || { mount -t proc proc "$tree/proc" && mounted+=("$tree/proc"); }
    mountpoint -q "$tree/dev" || { mount --bind /dev "$tree/dev" && mounted+=("$tree/dev"); }
    # (PostgreSQL's dynamic shared memory lives in /dev/shm: the tree's own)
    mountpoint -q "$tree/dev/shm" || { mount -t tmpfs tmpfs "$tree/dev/shm" && mounted+=("$tree/dev/shm"); }
}
in_tree() { chroot "$tree" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

# What the suites need in the tree besides the servers. (tzdata-legacy: sid's tzdata no
# longer has the zone EST, which 53_stored_values sets, as Debian 12's does.)
# (git, debhelper, dpkg-dev, postgresql-server-dev-all, jq: the package suite, when
# VERSIONS_SUITES names it.)
tools=(g++ make cmake pkg-config procps libboost-date-time-dev libboost-math-dev
       libnlopt-cxx-dev libgtest-dev tzdata-legacy
       git build-essential debhelper dpkg-dev postgresql-server-dev-all jq)
ensure_tools() {  # installs what of $tools the tree lacks
    local missing=() p
    for p in "${tools[@]}"; do
        in_tree dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "versions: installing ${missing[*]} in the tree"
    in_tree apt-get update -q >>"$cache/apt.log" 2>&1 &&
    in_tree env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confold "${missing[@]}" >>"$cache/apt.log" 2>&1 ||
        { tail "$cache/apt.log"; return 1; }
}

# --- the tree: made once per machine
make_tree() {
    local start=$SECONDS
    echo "versions: making the Debian tree $tree (debootstrap sid from $mirror)"
    # Never delete a tree with something mounted in it (/dev is bound there): an umount
    # that fails stops here, and rm stays on the tree's own file system whatever it meets.
    local m
    for m in dev/shm dev proc; do
        if mountpoint -q "$tree/$m"; then umount "$tree/$m" || fail "$tree/$m is still mounted"; fi
    done
    rm -rf --one-file-system "$tree"
    mkdir -p "$cache"
    command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null ||
        fail "could not install debootstrap"
    debootstrap --variant=minbase sid "$tree" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
        { tail -n 20 "$cache/debootstrap.log"; fail "debootstrap failed ($cache/debootstrap.log)"; }
    for s in sid experimental trixie bookworm; do echo "deb $mirror $s main"; done >"$tree/etc/apt/sources.list"
    # The registry serves these suites as it had them: their Release files are past their
    # Valid-Until.
    echo 'Acquire::Check-Valid-Until "false";' >"$tree/etc/apt/apt.conf.d/99lifecycle"
    # experimental's servers only (and the libpq they need); everything else from sid, or
    # trixie/bookworm for the majors only they have.
    cat >"$tree/etc/apt/preferences.d/lifecycle" <<'PIN'
Package: postgresql-1* postgresql-2* postgresql-client-1* postgresql-client-2* postgresql-server-dev-1* postgresql-server-dev-2* libpq5 libpq-dev
Pin: release a=experimental
Pin-Priority: 990
PIN
    # No service starts in the tree, and no package makes a cluster of its own.
    printf '#!/bin/sh\nexit 101\n' >"$tree/usr/sbin/policy-rc.d"; chmod +x "$tree/usr/sbin/policy-rc.d"
    mkdir -p "$tree/etc/postgresql-common"
    echo "create_main_cluster = false" >"$tree/etc/postgresql-common/createcluster.conf"
    mount_in_tree
    in_tree apt-get update -q >"$cache/apt.log" 2>&1 || { tail "$cache/apt.log"; fail "apt-get update in the tree failed"; }
    ensure_tools || fail "the build tools did not install in the tree"
    # Every major the registry has, this machine's own included (the old side of the
    # pg_upgrade); one that does not install is said and left out.
    local m
    for m in $(in_tree apt-cache search --names-only '^postgresql-[0-9]+$' | sed -nE 's/^postgresql-([0-9]+) .*/\1/p' | sort -n | uniq); do
        if in_tree env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                -o Dpkg::Options::=--force-confold "postgresql-$m" "postgresql-server-dev-$m" >>"$cache/apt.log" 2>&1; then
            echo "versions: PostgreSQL $m: $(in_tree /usr/lib/postgresql/$m/bin/postgres --version)"
        else
            echo "versions: PostgreSQL $m is listed but did not install (see $cache/apt.log)"
        fi
    done
    echo "$layout" >"$tree/.lifecycle-layout"
    echo "versions: tree made in $((SECONDS - start)) s"
}

if [ "$(cat "$tree/.lifecycle-layout" 2>/dev/null)" != "$layout" ]; then make_tree
else echo "versions: reusing the Debian tree $tree"; fi
mount_in_tree
ensure_tools || fail "the tools the suites need did not install in the tree"

installed=($(ls "$tree/usr/lib/postgresql" 2>/dev/null | grep -E '^[0-9]+$' | sort -n))
if [ $# -gt 0 ]; then majors=("$@")
else majors=($(printf '%s\n' "${installed[@]}" | grep -vx "$host_major")); fi
[ ${#majors[@]} -gt 0 ] || fail "no other major in the tree"
echo "versions: this machine's major is $host_major; testing ${majors[*]}"

# --- the sources, as git knows them (tracked or not ignored), no build products
copy_sources() {  # dir
    rm -rf "$tree$1" && mkdir -p "$tree$1"
    (git ls-files -co --exclude-standard 2>/dev/null || find . -path ./.git -prune -o -type f -print) |
        grep -v '^build/' | tar -cf - -T - | tar -xf - -C "$tree$1"
    # a git checkout of its own: test/package.sh copies what git knows
    in_tree bash -c "cd $1 && git init -q && git add -A &&
        git -c user.name=versions -c user.email=versions@localhost commit -q -m copy" ||
        echo "versions: the copy in $1 is not a git checkout (the package suite needs one)"
}

summary=()
for m in "${majors[@]}"; do
    pgc=/usr/lib/postgresql/$m/bin/pg_config
    if [ ! -x "$tree$pgc" ]; then
        echo "versions: $m: SKIP (not installed in the tree)"; summary+=("$m: SKIP"); continue
    fi
    echo "== versions: PostgreSQL $m ($(in_tree "$pgc" --version)): ${suites[*]}"
    start=$SECONDS
    copy_sources /src/lifecycle-$m
    # (PG_SUPPORTED_VERSIONS: the package suite builds the package of this major alone)
    in_tree bash -c "cd /src/lifecycle-$m && PG_CONFIG=$pgc PG_SUPPORTED_VERSIONS=$m LIFECYCLE_DEPS=skip scripts/test.sh ${suites[*]}" \
        >"$cache/test-$m.log" 2>&1
    sed -e "s/^/[$m] /" "$cache/test-$m.log"
    line=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$cache/test-$m.log" | tail -n 1)
    [ -n "$line" ] || line="0 1"
    set -- $line
    passed=$((passed + $1)); failed=$((failed + $2))
    per=$(sed -n 's/^== \([a-z_]*\): \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2\/\3/p' "$cache/test-$m.log" | paste -sd, -)
    summary+=("$m: $1 passed, $2 failed ($per; $((SECONDS - start)) s)")
done

# --- pg_upgrade from this machine's major to the newest
newest=${installed[${#installed[@]}-1]}
if [ "${VERSIONS_UPGRADE:-yes}" = yes ] && [ -x "$tree/usr/lib/postgresql/$host_major/bin/pg_config" ] &&
   [ "$newest" != "$host_major" ] && [ -f test/pg_upgrade.sh ]; then
    echo "== versions: pg_upgrade $host_major -> $newest"
    start=$SECONDS
    copy_sources /src/lifecycle-upgrade
    # The old major's module for the old cluster, built in the tree too. (bookworm's
    # clang cannot read sid's C++ headers for the JIT bitcode: the old side is built
    # without it; the new side, with, as above.)
    in_tree bash -c "cd /src/lifecycle-upgrade &&
        make -s with_llvm=no PG_CONFIG=/usr/lib/postgresql/$host_major/bin/pg_config -j$(nproc) &&
        make -s with_llvm=no PG_CONFIG=/usr/lib/postgresql/$host_major/bin/pg_config install &&
        make -s clean PG_CONFIG=/usr/lib/postgresql/$host_major/bin/pg_config &&
        make -s PG_CONFIG=/usr/lib/postgresql/$newest/bin/pg_config -j$(nproc) &&
        make -s PG_CONFIG=/usr/lib/postgresql/$newest/bin/pg_config install &&
        PGU_OLD=$host_major PGU_NEW=$newest test/pg_upgrade.sh" >"$cache/pg_upgrade.log" 2>&1
    sed -e "s/^/[pg_upgrade] /" "$cache/pg_upgrade.log"
    line=$(sed -n 's/^pg_upgrade: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$cache/pg_upgrade.log" | tail -n 1)
    [ -n "$line" ] || line="0 1"
    set -- $line
    passed=$((passed + $1)); failed=$((failed + $2))
    summary+=("pg_upgrade $host_major -> $newest: $1 passed, $2 failed ($((SECONDS - start)) s)")
fi

echo "versions: per major:"
printf '  %s\n' "${summary[@]}"
echo "versions: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
