#!/usr/bin/env bash
# Installs chDB's libchdb.so (ClickHouse 26.7 as an in-process library, for
# CLICKHOUSE_URL=embedded:///path) from the npm package @chdb/lib-linux-x64-gnu, pinned to one
# version and checked against its sha512 integrity (the registry's dist.integrity) and the
# library's sha256. Idempotent: does nothing when the pinned library is already there.
#   scripts/fetch-chdb.sh            installs into third_party/chdb/ (ignored by git)
#   BGM_CHDB_DIR=/opt/chdb scripts/fetch-chdb.sh   elsewhere (then set BGMIGRATE_CHDB_LIBRARY)
# Prints the library's path on stdout. Needs npm (scripts/deps.sh --browser installs Node.js).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGE=@chdb/lib-linux-x64-gnu
VERSION=26.7.3-stable.1
INTEGRITY=sha512-XP97mMqnc5tZpKQywR8N7cLTsHNiTmHr30pC5mzo3jWmukjKn2IBa60c2B/gWUNcuFjOMjWoorQICCqBVj5wpw==
LIB_SHA256=36ad4e999882821ef13cf2d0f52c93f48e6ee1b4498b35a201c23ce4b8d15bf5
DIR=${BGM_CHDB_DIR:-$PWD/third_party/chdb}
LIB=$DIR/libchdb.so

say() { printf 'fetch-chdb: %s\n' "$*" >&2; }

if [[ -f $DIR/VERSION && $(cat "$DIR/VERSION") == "$VERSION" && -f $LIB ]]; then
  echo "$LIB"
  exit 0
fi
[[ $(uname -m) == x86_64 ]] || { say "error: $PACKAGE is built for x86_64 Linux only, this is $(uname -m)"; exit 1; }
command -v npm >/dev/null || { say "error: npm is missing; install Node.js (scripts/deps.sh --browser) and run again"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
say "downloading $PACKAGE@$VERSION from the npm registry (~180 MB)"
(cd "$tmp" && npm pack --silent "$PACKAGE@$VERSION" >/dev/null)
tarball=$(ls "$tmp"/*.tgz)
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [[ $actual != "$INTEGRITY" ]]; then
  say "error: $tarball has integrity $actual, expected $INTEGRITY; not installed"
  exit 1
fi
tar -xzf "$tarball" -C "$tmp" package/libchdb.so package/package.json
got=$(sha256sum "$tmp/package/libchdb.so" | cut -d' ' -f1)
[[ $got == "$LIB_SHA256" ]] || { say "error: libchdb.so has sha256 $got, expected $LIB_SHA256"; exit 1; }
mkdir -p "$DIR"
mv "$tmp/package/libchdb.so" "$LIB.partial"
mv "$LIB.partial" "$LIB"
cp "$tmp/package/package.json" "$DIR/package.json"
echo "$VERSION" > "$DIR/VERSION"
say "installed $PACKAGE@$VERSION: $LIB"
echo "$LIB"
