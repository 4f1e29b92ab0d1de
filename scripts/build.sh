#!/usr/bin/env bash
# Install missing dependencies (scripts/deps.sh), then configure and build
# shiplog into build/ (override with SL_BUILD_DIR). Idempotent: a second run
# only rebuilds what changed.
#
# The default build type is RelWithDebInfo with assertions kept on (CMake's
# RelWithDebInfo adds -DNDEBUG; we drop it): optimized code that still checks
# its invariants. SL_BUILD_TYPE=Release or Debug builds those instead. Extra
# arguments go to cmake's configure step (e.g. -DSL_SANITIZE=ON).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/deps.sh

build_dir=${SL_BUILD_DIR:-build}
build_type=${SL_BUILD_TYPE:-RelWithDebInfo}

cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type" \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g" "$@"
cmake --build "$build_dir" -j"$(nproc)"
echo "build: $build_type in $build_dir/ ($build_dir/shiplog)"
