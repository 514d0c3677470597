#!/bin/sh
# The whole C suite under AddressSanitizer + UndefinedBehaviorSanitizer, in a
# second meson build dir (build-asan, gitignored):
#   tests/c/run_sanitized.sh [BUILD_DIR] [meson test args...]
# b_lundef=false: with the sanitizers, libasan's symbols are resolved at
# run time. UBSan findings are fatal (halt_on_error), leaks are reported.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
dir=${1:-build-asan}
[ $# -gt 0 ] && shift

if [ ! -f "$dir/build.ninja" ]; then
	meson setup "$dir" -Db_sanitize=address,undefined -Db_lundef=false
else
	meson configure "$dir" -Db_sanitize=address,undefined -Db_lundef=false
fi
ninja -C "$dir"

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:halt_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
exec meson test -C "$dir" --print-errorlogs "$@"
