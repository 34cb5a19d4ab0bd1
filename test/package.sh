#!/usr/bin/env bash
# The Debian packages in users' hands: builds postgresql-NN-lifecycle_<version>_amd64.deb
# for each PostgreSQL major pg_buildext builds for (debian/pgversions "15+" against the
# supported versions, see below) from a copy of the sources (debian/,
# `dpkg-buildpackage -us -uc -b`), then for each one in turn installs it with apt-get,
# checks what it put where, runs the pg_regress suite (sql/, expected/, data/) against the
# installed files of that major with no build tree (pg_regress called directly, not
# `make installcheck`, so nothing of the Makefile or src/ is there to lean on), and
# removes it. Ends with "package: N passed, N failed" (all majors together).
#   test/package.sh        (PKG_PORT, default 54412: the temporary instance's port)
# The majors: pg_buildext's, i.e. those of debian/pgversions among
# /usr/share/postgresql-common/supported-versions' list, which PG_SUPPORTED_VERSIONS
# sets; here it defaults to `installed` (every postgresql-server-dev-NN installed), so a
# Debian 12 machine with postgresql-server-dev-15 builds the 15 package only and one with
# 15, 17, 18 and 19 builds four. PG_SUPPORTED_VERSIONS="17 18 19" narrows it. The copy's
# debian/control is made for them (`pg_buildext updatecontrol`); the work tree's is not
# touched.
# Checks, one count each:
#   - lifecycle.control's default_version, debian/changelog's version and META.json's
#     (the distribution's and what it provides) agree, and META.json is valid PGXN 1.0.0;
#   - each major's .deb builds, under Debian's name, and for each: `apt-get install`
#     takes it;
#   - `dpkg -L` lists the module, its bitcode, the control file, the current install
#     script, every released and upgrade script (released/, updates/) and the docs;
#   - the package owns every lifecycle file in the server's directories (`dpkg -S`) and
#     they are byte for byte the package's (`dpkg --verify`): `make install` puts files
#     at the same paths, and the point is to test the package's, not those;
#   - each regression test, against that major's server.
# The build happens in a temporary folder (dpkg-buildpackage writes the .deb beside the
# source folder), from the files git knows (tracked or not ignored), so no object file
# of a build in the work tree gets in and nothing is left in the work tree.
# Each package is removed after its checks (apt-get remove) unless it was installed
# before the script began: then it stays, as the build just tested. When it is removed,
# the files a `make install` had put at its paths before are put back.
# Needs root or sudo (apt-get; it waits up to 10 minutes for another apt's lock on a
# shared machine); as root the instance runs as `postgres`.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/cluster.sh
passed=0
failed=0
check() {  # description command...: one count
    if "${@:2}"; then passed=$((passed + 1)); echo "ok   $1"
    else failed=$((failed + 1)); echo "FAIL $1"; fi
}
remove_package=no
remove() {  # the package under test, if it was not installed before, and the files kept aside
    [ "$remove_package" = yes ] || return 0
    remove_package=no
    if DEBIAN_FRONTEND=noninteractive $sudo apt-get remove -y -q -o DPkg::Lock::Timeout=600 "$pkg" >"$work/remove.log" 2>&1; then
        echo "removed $pkg (it was not installed before)"
    else cat "$work/remove.log"; failed=$((failed + 1)); fi
    local kept
    kept=$(tar -tf "$work/before-$v.tar" 2>/dev/null | grep -vc '/$')
    if [ "$kept" -gt 0 ]; then
        $sudo tar -xf "$work/before-$v.tar" -C / && echo "put back the $kept files that were there before"
    fi
}
finish() {
    remove
    echo "package: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# PG_CONFIG's major: the one the work tree's objects are built for (PACKAGE_REUSE_OBJECTS)
major=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')

# --- versions: one number in four places
control_version=$(sed -nE "s/^default_version *= *'([^']*)'.*/\1/p" lifecycle.control)
deb_version=$(dpkg-parsechangelog -S Version)
meta_version=$(jq -r .version META.json 2>/dev/null)
meta_provides=$(jq -r .provides.lifecycle.version META.json 2>/dev/null)
echo "versions: lifecycle.control $control_version, debian/changelog $deb_version, META.json $meta_version (provides $meta_provides)"
# The Debian version is the upstream one (a native package: no -revision).
check "debian/changelog's version is lifecycle.control's default_version" \
    test -n "$control_version" -a "$deb_version" = "$control_version"
check "META.json's version and provides.lifecycle.version are the control file's" \
    test "$meta_version" = "$control_version" -a "$meta_provides" = "$control_version"
# PGXN's required keys (meta-spec 1.0.0), and valid JSON at all (jq -e fails otherwise).
pgxn_meta() {
    jq -e '."meta-spec".version == "1.0.0" and (.name == "lifecycle") and (.abstract | length > 0)
           and (.maintainer | length > 0) and (.license | length > 0) and (.provides.lifecycle.file | length > 0)' \
        META.json >/dev/null
}
check "META.json is PGXN meta-spec 1.0.0 with its required keys" pgxn_meta

# --- build, in a copy
work=$(mktemp -d /tmp/lifecycle-package.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"  # the server account runs pg_regress in $work/regress-NN
mkdir "$work/src"
if ! git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$work/src"; then
    echo "could not copy the sources (needs a git checkout)"; failed=$((failed + 1)); finish
fi
# The majors pg_buildext builds for, and the copy's debian/control made for them (the
# committed one is Debian 12's: 15 only; dpkg-buildpackage's clean step runs
# `pg_buildext checkcontrol`, which refuses a control that lists other majors).
export PG_SUPPORTED_VERSIONS=${PG_SUPPORTED_VERSIONS:-${DEB_PG_SUPPORTED_VERSIONS:-installed}}
majors=($(cd "$work/src" && pg_buildext supported-versions))
echo "PostgreSQL majors to build for (debian/pgversions $(grep -v '^#' debian/pgversions | xargs), PG_SUPPORTED_VERSIONS=$PG_SUPPORTED_VERSIONS): ${majors[*]:-none}"
if [ "${#majors[@]}" -eq 0 ]; then
    echo "no PostgreSQL major of debian/pgversions is supported here"; failed=$((failed + 1)); finish
fi
if ! (cd "$work/src" && pg_buildext updatecontrol); then
    echo "pg_buildext updatecontrol failed"; failed=$((failed + 1)); finish
fi
# PACKAGE_REUSE_OBJECTS=1 (scripts/test.sh, right after the regress suite's `make` of the
# same sources) brings that build's objects, bitcode and dependency files along, times
# kept, so the package's `make` only links what is up to date and rebuilds what is not:
# the compile is most of the build's minutes. Without it the package builds from scratch.
# They are PG_CONFIG's major's, and pg_buildext's loop builds each major in the top
# folder in turn, with a `make clean` after each: so they serve the first major it
# builds only, and only when that is PG_CONFIG's; otherwise they are not brought (make
# would take them as up to date for another major's headers), and every major builds
# from scratch.
reuse=0
if [ "${PACKAGE_REUSE_OBJECTS:-0}" = 1 ]; then
    if [ "${majors[0]}" = "$major" ]; then reuse=1
    else echo "not reusing the work tree's objects: they are PostgreSQL $major's, and ${majors[0]} is built first"; fi
fi
if [ "$reuse" = 1 ]; then
    find . -path ./build -prune -o -path ./build-pred -prune -o -path ./.git -prune -o \
        \( -name '*.o' -o -name '*.bc' -o -name '*.Po' -o -name lifecycle.so \) -print0 |
        tar --null -T - -cf - | tar -xf - -C "$work/src"
    echo "reusing $(find "$work/src" -name '*.o' | wc -l) object files of the work tree's build for PostgreSQL $major"
fi
echo "building lifecycle ${deb_version} for PostgreSQL ${majors[*]} in $work"
start=$(date +%s)
# noddebs: no -dbgsym package, which nothing here installs. -nc (no pre-clean) when
# reusing objects: the clean step is `make clean`, and the copy is fresh anyway.
nc=()
[ "$reuse" = 1 ] && nc=(-nc)
(cd "$work/src" && DEB_BUILD_OPTIONS="noddebs${DEB_BUILD_OPTIONS:+ $DEB_BUILD_OPTIONS}" \
    dpkg-buildpackage -us -uc -b "${nc[@]}" -j"$(nproc)") >"$work/build.log" 2>&1
echo "built in $(($(date +%s) - start)) s: $(cd "$work" && ls *.deb 2>/dev/null | xargs)"
built=0
for v in "${majors[@]}"; do
    deb=$work/postgresql-${v}-lifecycle_${deb_version}_$(dpkg --print-architecture).deb
    check "dpkg-buildpackage builds $(basename "$deb")" test -f "$deb"
    [ -f "$deb" ] && built=$((built + 1))
done
others=$(cd "$work" && ls *.deb 2>/dev/null | grep -v -E "^postgresql-($(IFS='|'; echo "${majors[*]}"))-lifecycle_" | xargs)
[ -z "$others" ] || { echo "FAIL packages built for no major asked: $others"; failed=$((failed + 1)); }
[ "$built" -eq "${#majors[@]}" ] || tail -n 40 "$work/build.log"
[ "$built" -gt 0 ] || finish

# the current version's install script, and every released and upgrade script (DATA)
version=$(sed -n "s/^default_version = '\(.*\)'/\1/p" lifecycle.control)
scripts="lifecycle--$version.sql $(cd released && ls lifecycle--*.sql) $(cd updates && ls lifecycle--*.sql)"
tests=($(cd sql && ls *.sql | sed 's/\.sql$//'))

installed() {
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --reinstall -o DPkg::Lock::Timeout=600 --no-install-recommends "$deb" \
        >"$work/apt.log" 2>&1 || { tail -n 20 "$work/apt.log"; return 1; }
    dpkg-query -W -f='${Status} ${Version}' "$pkg" | grep -qx "install ok installed $deb_version"
}
listed() {  # every path given is in dpkg -L
    local list missing=0 f
    list=$(dpkg -L "$pkg")
    for f in "$@"; do grep -qxF "$f" <<<"$list" || { echo "  not in dpkg -L: $f"; missing=1; }; done
    [ "$missing" -eq 0 ]
}
owned() {  # the package owns every lifecycle file the server would load
    local f bad=0
    for f in "$pkglibdir"/lifecycle* "$extdir"/lifecycle*; do
        [ -d "$f" ] && continue
        dpkg -S "$f" 2>/dev/null | grep -q "^$pkg: " || { echo "  not the package's: $f"; bad=1; }
    done
    return "$bad"
}

# --- each major's package in turn: install, check, regress, remove
for v in "${majors[@]}"; do
    pkg=postgresql-$v-lifecycle
    deb=$work/${pkg}_${deb_version}_$(dpkg --print-architecture).deb
    [ -f "$deb" ] || continue
    echo "== PostgreSQL $v: $pkg"
    pg_config_v=/usr/lib/postgresql/$v/bin/pg_config
    PG_BIN=$("$pg_config_v" --bindir)
    pkglibdir=$("$pg_config_v" --pkglibdir)
    extdir=$("$pg_config_v" --sharedir)/extension
    dpkg-deb -f "$deb" Depends

    # install: --reinstall, so that the package's files replace whatever is there even
    # when the same version is installed (a `make install` since may have overwritten them).
    was_installed=no
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' && was_installed=yes
    [ "$was_installed" = yes ] && echo "$pkg is installed already: it is reinstalled and stays"
    [ "$was_installed" = no ] && remove_package=yes
    # What a `make install` had put at the package's paths is kept aside and put back after
    # the package is removed, so the machine is left as it was (it is shared, and the suites
    # after this one in scripts/test.sh use those files).
    (cd / && ls -d "${pkglibdir#/}"/lifecycle* "${pkglibdir#/}"/bitcode/lifecycle* "${extdir#/}"/lifecycle* 2>/dev/null |
        tar -cf "$work/before-$v.tar" -T - 2>/dev/null)
    check "apt-get install ./$(basename "$deb")" installed

    # what it installed
    expected=("$pkglibdir/lifecycle.so" "$pkglibdir/bitcode/lifecycle.index.bc" "$extdir/lifecycle.control")
    for s in $scripts; do expected+=("$extdir/$s"); done
    doc=/usr/share/doc/$pkg
    expected+=("$doc/copyright" "$doc/README.md.gz" "$doc/changelog.gz")
    check "dpkg -L lists the module, its bitcode, the control file, $(wc -w <<<"$scripts") install scripts and the docs" \
        listed "${expected[@]}"
    check "dpkg -S: $pkg owns $pkglibdir/lifecycle.so and every lifecycle file in $extdir" owned
    # dpkg --verify prints a line per file whose checksum differs from the package's.
    verify=$(dpkg --verify "$pkg" 2>&1)
    [ -z "$verify" ] || echo "$verify"
    check "dpkg --verify: the installed files are the package's" test -z "$verify"

    # the regression suite against the installed files: only sql/, expected/, data/, docs/
    # and test/regress.conf are copied, and pg_regress runs as the Makefile's installcheck
    # would (its REGRESS_OPTS, PGXS's database name contrib_regression, which 99_upgrade
    # reconnects to, and every sql/*.sql in name order).
    pgxs_dir=$(dirname "$(dirname "$(dirname "$("$pg_config_v" --pgxs)")")")
    regress=$pgxs_dir/src/test/regress/pg_regress
    rdir=$work/regress-$v
    mkdir "$rdir"
    cp -r sql expected data docs "$rdir/"
    cp test/regress.conf "$rdir/"
    [ "$(id -u)" -eq 0 ] && chown -R postgres "$rdir"
    start=$(date +%s)
    (cd "$rdir" && as_server_user "$regress" --inputdir=. --outputdir=. --bindir="$PG_BIN" \
        --temp-instance=./tmp_check --temp-config=./regress.conf --port="${PKG_PORT:-54412}" \
        --load-extension=plpgsql --dbname=contrib_regression "${tests[@]}") >"$rdir/run.log" 2>&1
    echo "pg_regress ran in $(($(date +%s) - start)) s"
    grep -E '^(test| ?[a-z0-9_]+ +\.\.\.)|^(ok|not ok) ' "$rdir/run.log" || true
    # (pg_regress of PostgreSQL 15 prints 'name ... ok', of 16 and later TAP's 'ok N - name')
    ok=$(grep -cE '\.\.\. ok |^ok [0-9]+ ' "$rdir/run.log")
    bad=$(grep -cE '\.\.\. FAILED |^not ok [0-9]+ ' "$rdir/run.log")
    if [ "$ok" -eq 0 ] && [ "$bad" -eq 0 ]; then cat "$rdir/run.log"; bad=1; fi
    [ -f "$rdir/regression.diffs" ] && cat "$rdir/regression.diffs"
    echo "PostgreSQL $v: regress $ok passed, $bad failed"
    passed=$((passed + ok))
    failed=$((failed + bad))
    remove
done
finish
