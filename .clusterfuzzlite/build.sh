#!/bin/bash -eu
# Builds the fuzz targets for ClusterFuzzLite and OSS-Fuzz into $OUT: each target's binary, its
# seed corpus ($OUT/<target>_seed_corpus.zip, from corpus/<target>/), its libFuzzer options
# (.clusterfuzzlite/<target>.options) and, for trace_parser, a dictionary of the trace format's
# words. The image runs it in $SRC/flushfuzz with the OSS-Fuzz environment (SANITIZER,
# RUSTFLAGS, a nightly toolchain). It also runs outside a container (.ci/run does, see the
# README): from the project root, with OUT set, and SANITIZER=none on a stable toolchain.

if [ -f fuzz/Cargo.toml ]; then
  project="$PWD"
else
  project="$SRC/flushfuzz"
fi
cd "$project"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

targets=()
for f in fuzz/fuzz_targets/*.rs; do
  targets+=("$(basename "$f" .rs)")
done

triple="${CARGO_BUILD_TARGET:-$(rustc -vV | sed -n 's/^host: //p')}"
# cargo fuzz builds with AddressSanitizer unless told otherwise; RUSTFLAGS from OSS-Fuzz add the
# same sanitizer. Under SANITIZER=coverage the image's cargo wrapper turns this command into a
# plain instrumented build into the same folder.
sanitizer=()
if [ "${SANITIZER:-address}" = none ]; then
  sanitizer=(--sanitizer none)
fi
cargo fuzz build -O "${sanitizer[@]}" --target "$triple"

# zip when there is one (the image has it), else Python's zipfile: the files of a folder, flat,
# in name order.
zip_folder() {
  local zip_path="$1" dir="$2"
  rm -f "$zip_path"
  if command -v zip >/dev/null 2>&1; then
    (cd "$dir" && find . -maxdepth 1 -type f | LC_ALL=C sort | zip -q -X -j "$zip_path" -@)
  else
    python3 - "$zip_path" "$dir" <<'PY'
import pathlib, sys, zipfile
out, folder = sys.argv[1], pathlib.Path(sys.argv[2])
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for p in sorted(folder.iterdir()):
        if p.is_file():
            z.write(p, p.name)
PY
  fi
}

for t in "${targets[@]}"; do
  cp "fuzz/target/$triple/release/$t" "$OUT/$t"
  zip_folder "$OUT/${t}_seed_corpus.zip" "corpus/$t"
  if [ -f ".clusterfuzzlite/$t.options" ]; then
    cp ".clusterfuzzlite/$t.options" "$OUT/$t.options"
  fi
done

# The dictionary of trace_parser: every word of the seed traces outside comments, with
# `name=` for each field, so that byte mutations insert whole keywords, action and preset names.
# Made from the seeds, it follows the trace format when the format changes.
grep -hv '^#' corpus/trace_parser/*.trace |
  tr -s ' \t\r' '\n\n\n' |
  sed -e 's/=.*/=/' |
  grep -v '^$' |
  LC_ALL=C sort -u |
  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/.*/"&"/' >"$OUT/trace_parser.dict"

echo "built into $OUT: ${targets[*]}"
