#!/usr/bin/env bash
# Builds the pinned SurrealDB test server once into a cache outside the repository and prints
# the path of the binary on stdout (progress goes to stderr).
#
#   bash scripts/surreal-server.sh [VERSION]
#
#   VERSION              which recipe: 3 (or 3.3.5, the default, used by CI: testkit/recipe) or
#                        4 (or 4.0.0-beta.1: testkit/recipe-4); also read from SURREAL_VERSION
#   SURREAL_BIN          use this binary instead (nothing is built)
#   SURREAL_POOL_CACHE   cache directory (default: $XDG_CACHE_HOME or ~/.cache, then /surreal-pool)
#
# A file lock makes parallel callers (several test binaries) wait for one build.
set -euo pipefail

if [ -n "${SURREAL_BIN:-}" ]; then
  [ -x "$SURREAL_BIN" ] || { echo "SURREAL_BIN=$SURREAL_BIN is not an executable file" >&2; exit 1; }
  echo "$SURREAL_BIN"; exit 0
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The recipes live in the test kit, which builds the default one the same way (same key, same
# binary).
case "${1:-${SURREAL_VERSION:-3}}" in
  3|3.3|3.3.5) recipe="$here/testkit/recipe" ;;
  4|4.0|4.0.0-beta.1) recipe="$here/testkit/recipe-4" ;;
  *) echo "surreal-server.sh: unknown version ${1:-$SURREAL_VERSION} (known: 3.3.5, 4.0.0-beta.1)" >&2; exit 2 ;;
esac
manifest="$recipe/Cargo.toml.txt"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$manifest" | head -n1)
cache="${SURREAL_POOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/surreal-pool}"
bin="$cache/bin/surreal-$version"
# The key also covers the manifest and lock file, so a changed recipe rebuilds.
key=$(cat "$manifest" "$recipe/Cargo.lock.txt" "$recipe/main.rs.txt" | sha256sum | cut -c1-16)
bin="$bin-$key"

if [ -x "$bin" ]; then echo "$bin"; exit 0; fi

mkdir -p "$cache/bin"
exec 9>"$cache/build.lock"
echo "surreal-pool: waiting for the test-server build lock ($cache/build.lock)" >&2
flock 9
if [ ! -x "$bin" ]; then
  echo "surreal-pool: building SurrealDB $version test server into $cache (20 to 25 minutes on 2 cores, once)" >&2
  # A cargo project made from the recipe, in the cache.
  project="$cache/recipe-$key"
  mkdir -p "$project/src"
  cp "$manifest" "$project/Cargo.toml"
  cp "$recipe/Cargo.lock.txt" "$project/Cargo.lock"
  cp "$recipe/main.rs.txt" "$project/src/main.rs"
  CARGO_TARGET_DIR="$cache/target" cargo build --release --locked --manifest-path "$project/Cargo.toml" >&2
  cp "$cache/target/release/surreal" "$bin.tmp"
  mv "$bin.tmp" "$bin"
  echo "surreal-pool: test server ready: $bin" >&2
fi
echo "$bin"
