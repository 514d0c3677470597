#!/bin/sh
# Builds the libFuzzer harness, outside meson's default build:
#   tests/fuzz/build.sh [BUILD_DIR]        (default: build)
# Compiles every src/*.c but main.c, plus the C files meson generates from
# the schema into BUILD_DIR, with clang's fuzzer + ASan + UBSan, and links
# libmnl, libnftnl, libcap and erl_interface's libei.a.
# Output: BUILD_DIR/fuzz/fuzz_request and BUILD_DIR/fuzz/request.dict
# (a libFuzzer dictionary: every op, object, attribute and enum name as an
# ETF atom).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
build=${1:-build}
CC=${CC_FUZZ:-clang}
out="$build/fuzz"

# The generated tables, fresh from the schema.
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build"
fi
if ! log=$(ninja -C "$build" nfp_enums.c nfp_objects.c nfp_ops.c nfp_tables.h nfp_sysctl.c 2>&1); then
	printf '%s\n' "$log" >&2
	echo "build.sh: generating the tables in $build failed" >&2
	exit 1
fi

ei_dir=$(erl -noshell -eval 'io:format("~s",[code:lib_dir(erl_interface)]),halt().')
if [ ! -f "$ei_dir/lib/libei.a" ]; then
	echo "build.sh: no libei.a under $ei_dir/lib" >&2
	exit 1
fi

srcs=$(ls src/*.c | grep -v -e '^src/main\.c$' -e '^src/ops_test\.c$')
gen="$build/nfp_enums.c $build/nfp_objects.c $build/nfp_ops.c $build/nfp_sysctl.c"
mkdir -p "$out"

# shellcheck disable=SC2086
$CC -g -O1 -std=gnu11 \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer \
	-Isrc -I"$build" -I"$ei_dir/include" \
	-o "$out/fuzz_request.new" \
	tests/fuzz/fuzz_request.c tests/fuzz/no_kernel.c $srcs $gen \
	$(pkg-config --libs libmnl libnftnl libcap libseccomp) "$ei_dir/lib/libei.a" -lpthread
mv "$out/fuzz_request.new" "$out/fuzz_request"

# The dictionary: "\x77<len><name>" (SMALL_ATOM_UTF8_EXT) for every quoted
# lowercase identifier in the generated tables.
grep -ho '"[a-z][a-z0-9_]*"' $gen | tr -d '"' | sort -u |
while read -r name; do
	printf 'kw_%s="\\x77\\x%02x%s"\n' "$name" "${#name}" "$name"
done >"$out/request.dict"
# A few structural tokens: version+3-tuple, NIL, map and list headers.
cat >>"$out/request.dict" <<'DICT'
tok_req="\x83\x68\x03"
tok_nil="\x6a"
tok_map1="\x74\x00\x00\x00\x01"
tok_list1="\x6c\x00\x00\x00\x01"
tok_bin1="\x6d\x00\x00\x00\x01"
tok_u64max="\x6e\x08\x00\xff\xff\xff\xff\xff\xff\xff\xff"
tok_h1="\x62\x00\x01\x00\x01"
tok_h2="\x62\x00\x01\x00\x02"
tok_h3="\x62\x00\x01\x00\x03"
DICT
echo "built $out/fuzz_request ($(wc -l <"$out/request.dict") dictionary entries)"
