#!/usr/bin/env bash
# Builds examples/consumer against the build tree's package config, then
# against `cmake --install` into a temporary prefix (find_package and
# pkg-config), and runs each result. Usage: consumer_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "--- find_package from the build tree"
cmake -S "$src/examples/consumer" -B "$work/from-build" -G Ninja -Dcredentials_DIR="$build" >/dev/null
cmake --build "$work/from-build" >/dev/null
"$work/from-build/consumer" "$work/vault1" | grep -qx ok

echo "--- cmake --install, then find_package from the prefix"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$src/examples/consumer" -B "$work/from-prefix" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/from-prefix" >/dev/null
LD_LIBRARY_PATH="$work/prefix/lib" "$work/from-prefix/consumer" "$work/vault2" | grep -qx ok
test -x "$work/prefix/bin/credential_manager"

echo "--- pkg-config from the prefix"
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
flags=$(pkg-config --cflags --libs credentials)
c++ -std=c++20 "$src/examples/consumer/main.cc" $flags -o "$work/pc-consumer"
LD_LIBRARY_PATH="$work/prefix/lib" "$work/pc-consumer" "$work/vault3" | grep -qx ok
echo "consumer builds and runs from the build tree, the prefix and pkg-config"
