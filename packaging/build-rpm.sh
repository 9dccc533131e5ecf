#!/bin/bash
# Build dist/tenement-py-<version>-1.x86_64.rpm from the working tree, in a temporary
# copy (see build-deb.sh: VERSION=, FORCE=1; RPMLINT=1 runs rpmlint).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV PIP_REQUIRE_VIRTUALENV
# Never the developer's pip cache: a wheel built there by another python carries its RUNPATH.
export PIP_CACHE_DIR=${HOME:-/root}/.cache/tenement-packaging/pip

VERSION=${VERSION:-$(/usr/bin/python3 packaging/versions.py package)}
PEP440=$(/usr/bin/python3 packaging/versions.py pep440 "$VERSION")
ARCH=$(uname -m)
RPM=tenement-py-${VERSION}-1.${ARCH}.rpm
mkdir -p dist

# shellcheck source=packaging/tree.sh
. packaging/tree.sh
HASH="$(tree_hash)-$VERSION"
if up_to_date "$RPM" "$HASH"; then
    exit 0
fi

WORK=$(mktemp -d /tmp/tenement-rpm.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
SRC="$WORK/src"
copy_tree "$SRC"
printf '__version__ = "%s"\n' "$PEP440" > "$SRC/tenement/_version.py"

echo "Building dist/$RPM"
start=$(date +%s)
# --nodeps: Debian's rpm has no database of the BuildRequires (they are Debian packages here).
rpmbuild -bb --nodeps \
    --define "_topdir $WORK/rpmbuild" \
    --define "pkg_version $VERSION" \
    --define "tenement_src $SRC" \
    packaging/rpm/tenement.spec > "$WORK/build.log" 2>&1 || {
    tail -n 60 "$WORK/build.log"
    cp "$WORK/build.log" dist/build-rpm.log
    echo "rpmbuild failed; full log in dist/build-rpm.log" >&2
    exit 1
}
cp "$WORK/build.log" dist/build-rpm.log
cp "$WORK/rpmbuild/RPMS/$ARCH/$RPM" "dist/$RPM"
echo "$HASH" > "dist/.$RPM.tree"
echo "Built dist/$RPM in $(( $(date +%s) - start )) s"

if [ -n "${RPMLINT:-}" ] && command -v rpmlint >/dev/null; then
    rpmlint "dist/$RPM" > dist/rpmlint.txt 2>&1 || true
    tail -n 3 dist/rpmlint.txt
fi
