# Shared by build-deb.sh and build-rpm.sh (sourced from the repository root): the files a
# package is built from are the tracked and untracked-not-ignored ones of the working tree.

# The NUL-separated list of those files (regular files only).
tree_files() {
    git ls-files -co --exclude-standard -z | xargs -0 -I{} sh -c 'test -f "{}" && printf "%s\0" "{}"'
}

# A hash of their names and contents, for the "same tree" stamp in dist/.
tree_hash() {
    tree_files | LC_ALL=C sort -z \
        | xargs -0 -I{} sh -c 'printf "%s\0" "{}" && sha256sum < "{}"' \
        | sha256sum | cut -d' ' -f1
}

# up_to_date PACKAGE HASH: true (and says so) when dist/PACKAGE was built from HASH,
# unless FORCE is set.
up_to_date() {
    if [ -z "${FORCE:-}" ] && [ -f "dist/$1" ] && [ "$(cat "dist/.$1.tree" 2>/dev/null)" = "$2" ]; then
        echo "dist/$1 is up to date (same tree and version; FORCE=1 rebuilds)"
        return 0
    fi
    return 1
}

# copy_tree DEST: the files into DEST, keeping their paths.
copy_tree() {
    mkdir -p "$1"
    tree_files | tar --null -T - -cf - | tar -xf - -C "$1"
}
