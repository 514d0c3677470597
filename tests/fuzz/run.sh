#!/bin/sh
# Builds the fuzzer and runs it for a bounded time:
#   tests/fuzz/run.sh [SECONDS] [extra libFuzzer flags...]   (default 60 s)
# Environment: BUILD (meson build dir with the generated tables, default
# build), FUZZ_JOBS (parallel fuzzing processes, default 1), FUZZ_KEEP_GOING=1
# (fuzz even when a regression still crashes; the run still fails).
#
# 1. Replays every file in tests/fuzz/regressions/; fails if any crashes.
# 2. Fuzzes from the committed seeds (tests/fuzz/seeds/, read only) into the
#    scratch corpus tests/fuzz/corpus-run/ (gitignored, kept between runs).
# 3. A crash, leak, timeout or OOM input (written to tests/fuzz/artifacts/,
#    gitignored) is copied into regressions/ (so the next run replays it)
#    and the script fails.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
secs=${1:-60}
[ $# -gt 0 ] && shift
build=${BUILD:-build}
jobs=${FUZZ_JOBS:-1}
fuzzer="$build/fuzz/fuzz_request"
seeds=tests/fuzz/seeds
corpus=tests/fuzz/corpus-run
artifacts=tests/fuzz/artifacts
regressions=tests/fuzz/regressions

tests/fuzz/build.sh "$build"

# Sanitizer settings: abort on the first report, keep the stacks useful.
# The harness runs under the port's seccomp filter (README.md), which a
# symbolizer started from it would inherit and could not load under (no
# executable mappings): reports are unsymbolized, and libFuzzer does not
# print new functions. Replay an input with FUZZ_SANDBOX=0 for symbols.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:symbolize=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# 1. Regressions first: every file is replayed (each in its own process),
#    and every one that still crashes is named. FUZZ_KEEP_GOING=1 fuzzes
#    anyway (the exit status stays a failure).
mkdir -p "$regressions"
failed=0
replayed=0
for f in "$regressions"/*; do
	case "$f" in *.md) continue ;; esac
	[ -f "$f" ] || continue
	replayed=$((replayed + 1))
	input=$f
	# Inputs beyond -max_len are kept gzipped (they are mostly repetition).
	case "$f" in
	*.gz)
		input="$build/fuzz/replay.input"
		gzip -dc "$f" >"$input"
		;;
	esac
	if ! "$fuzzer" -rss_limit_mb=2048 "$input" >"$build/fuzz/replay.log" 2>&1; then
		grep -E 'ERROR:|SUMMARY:|^    #[0-9] ' "$build/fuzz/replay.log" | head -12 >&2
		echo "run.sh: regression $f still crashes" >&2
		failed=$((failed + 1))
	fi
done
echo "== replayed $replayed regression input(s): $failed crash"
if [ "$failed" -gt 0 ] && [ "${FUZZ_KEEP_GOING:-0}" != 1 ]; then
	exit 1
fi

# 2. Fuzz.
mkdir -p "$corpus" "$artifacts"
echo "== fuzzing for $secs s ($jobs job(s)); corpus $corpus, seeds $seeds"
status=0
if [ "$jobs" -gt 1 ]; then
	"$fuzzer" -print_funcs=0 -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 -timeout=25 \
		-dict="$build/fuzz/request.dict" -artifact_prefix="$artifacts/" \
		-jobs="$jobs" -workers="$jobs" -print_final_stats=1 \
		"$@" "$corpus" "$seeds" || status=$?
else
	"$fuzzer" -print_funcs=0 -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 -timeout=25 \
		-dict="$build/fuzz/request.dict" -artifact_prefix="$artifacts/" \
		-print_final_stats=1 \
		"$@" "$corpus" "$seeds" || status=$?
fi

# 3. Whatever crashed becomes a regression.
found=0
for f in "$artifacts"/crash-* "$artifacts"/leak-* "$artifacts"/timeout-* "$artifacts"/oom-*; do
	[ -f "$f" ] || continue
	cp "$f" "$regressions/"
	mv "$f" "$f.saved"
	echo "run.sh: new regression $regressions/$(basename "$f")" >&2
	found=1
done
if [ "$failed" -gt 0 ]; then
	echo "run.sh: $failed regression(s) still crash" >&2
	[ "$status" -ne 0 ] || status=1
fi
if [ "$found" -ne 0 ]; then
	echo "run.sh: FAILED: the fuzzer found a new crash (see the report above)" >&2
	exit 1
fi
if [ "$status" -ne 0 ]; then
	echo "run.sh: FAILED (exit $status)" >&2
	exit 1
fi
echo "== no crash in $secs s"
