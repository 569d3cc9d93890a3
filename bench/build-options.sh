#!/usr/bin/env bash
# Measures `cargo lambda build --release --arm64` of every function under
# several release-profile options, each in a target folder of its own:
# the build from nothing (dependencies included), the build after a change
# to shared/domain (every workspace crate and every link again: a typical
# deploy), the largest binary and the largest zip. Prints a markdown table.
#
#   bench/build-options.sh [option-set ...]   # default: all of them
#
# An option set is NAME=LTO,CODEGEN_UNITS[,OPT_LEVEL]; the set overrides
# [profile.release] of Cargo.toml through CARGO_PROFILE_RELEASE_* and keeps
# its per-package opt-levels. Each needs a few GB and up to a quarter of an
# hour; run it on a quiet machine. The release profile in Cargo.toml was
# chosen with it (docs/performance.md, Packaging).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.tools/venv/bin:$PATH"
sets=("$@")
[ ${#sets[@]} -gt 0 ] || sets=("thin-1=thin,1" "thin-16=thin,16" "off-16=off,16" "off-16-s=off,16,s")
functions=$(python3 - <<'PY'
import re, pathlib
print(" ".join(sorted(p.name for p in pathlib.Path("functions").iterdir() if (p / "Cargo.toml").exists())))
PY
)
packages=()
for f in $functions; do packages+=(--package "$f"); done
zip_size() { python3 -c 'import io,sys,zipfile
b=io.BytesIO(); z=zipfile.ZipFile(b,"w",zipfile.ZIP_DEFLATED); z.write(sys.argv[1],"bootstrap"); z.close(); print(len(b.getvalue()))' "$1"; }
echo "| options | from nothing | after a change to shared/domain | largest binary (MB) | largest zip (MB) |"
echo "|---|---:|---:|---:|---:|"
for set in "${sets[@]}"; do
  name=${set%%=*}; IFS=, read -r lto cgu opt <<<"${set#*=}"
  dir="target/build-options/$name"
  rm -rf "$dir"; mkdir -p target/build-options
  export CARGO_TARGET_DIR="$dir" CARGO_PROFILE_RELEASE_LTO="$lto" CARGO_PROFILE_RELEASE_CODEGEN_UNITS="$cgu"
  if [ -n "${opt:-}" ]; then export CARGO_PROFILE_RELEASE_OPT_LEVEL="$opt"; else unset CARGO_PROFILE_RELEASE_OPT_LEVEL; fi
  start=$(date +%s); cargo lambda build --release --arm64 "${packages[@]}" >"$dir.log" 2>&1 || { echo "| $name | build failed, see $dir.log | | | |"; continue; }
  cold=$(( $(date +%s) - start ))
  touch shared/domain/src/lib.rs
  start=$(date +%s); cargo lambda build --release --arm64 "${packages[@]}" >>"$dir.log" 2>&1
  warm=$(( $(date +%s) - start ))
  largest=0; largest_zip=0
  for f in $functions; do
    b="$dir/lambda/$f/bootstrap"; s=$(stat -c %s "$b"); z=$(zip_size "$b")
    (( s > largest )) && largest=$s; (( z > largest_zip )) && largest_zip=$z
  done
  printf '| lto=%s, codegen-units=%s%s | %dm%02ds | %dm%02ds | %.1f | %.2f |\n' "$lto" "$cgu" "${opt:+, opt-level=$opt}" \
    $((cold/60)) $((cold%60)) $((warm/60)) $((warm%60)) "$(echo "$largest/1000000" | bc -l)" "$(echo "$largest_zip/1000000" | bc -l)"
done
