#!/bin/bash
# Build dist/tenement-py_<version>_amd64.deb from the working tree (committed or not),
# in a temporary copy: the repository is never written to except dist/.
#
#   packaging/build-deb.sh                    # version from tenement/_version.py
#   VERSION=0.3.1~test1 packaging/build-deb.sh  # same tree, another package version
#   FORCE=1 ...                               # rebuild even if dist/ is up to date
#   LINTIAN=1 ...                             # run lintian on the result
#
# A package in dist/ built from the same files and version is reused: its stamp
# dist/.<deb>.tree holds the hash of every tracked and untracked-not-ignored file.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# Debian's tools and Debian's python only (never a pyenv shim first on PATH).
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV PIP_REQUIRE_VIRTUALENV

VERSION=${VERSION:-$(/usr/bin/python3 packaging/versions.py package)}
PEP440=$(/usr/bin/python3 packaging/versions.py pep440 "$VERSION")
ARCH=$(dpkg --print-architecture)
DEB=tenement-py_${VERSION}_${ARCH}.deb
mkdir -p dist

# shellcheck source=packaging/tree.sh
. packaging/tree.sh
HASH="$(tree_hash)-$VERSION"
if up_to_date "$DEB" "$HASH"; then
    exit 0
fi

WORK=$(mktemp -d /tmp/tenement-deb.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
SRC="$WORK/tenement-py-$VERSION"
copy_tree "$SRC"
cp -r packaging/debian "$SRC/debian"
printf '__version__ = "%s"\n' "$PEP440" > "$SRC/tenement/_version.py"

TOP=$(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Version)
if [ "$TOP" != "$VERSION" ]; then
    # A version other than the changelog's (VERSION=, or _version.py moved on): a new
    # top entry in the copy, as `dch -v` would write it.
    {
        printf 'tenement-py (%s) unstable; urgency=medium\n\n' "$VERSION"
        printf '  * Build of the working tree as %s.\n\n' "$VERSION"
        printf ' -- tenement developers <tenement@example.org>  %s\n\n' "$(date -R)"
        cat "$SRC/debian/changelog"
    } > "$WORK/changelog" && mv "$WORK/changelog" "$SRC/debian/changelog"
fi

echo "Building dist/$DEB in $SRC"
start=$(date +%s)
(cd "$SRC" && dpkg-buildpackage -b -us -uc) > "$WORK/build.log" 2>&1 || {
    tail -n 60 "$WORK/build.log"
    echo "dpkg-buildpackage failed; full log kept in dist/build-deb.log" >&2
    cp "$WORK/build.log" dist/build-deb.log
    exit 1
}
cp "$WORK/build.log" dist/build-deb.log
cp "$WORK/$DEB" "dist/$DEB"
echo "$HASH" > "dist/.$DEB.tree"
echo "Built dist/$DEB in $(( $(date +%s) - start )) s"

if [ -n "${LINTIAN:-}" ]; then
    lintian --info --display-info --pedantic "$WORK"/*.changes | tee dist/lintian-deb.txt || true
fi
