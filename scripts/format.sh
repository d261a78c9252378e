#!/usr/bin/env bash
# The tree's C++ formatting, by the root .clang-format (clang-format-14, a Debian package that
# scripts/setup.sh installs).
#   scripts/format.sh            formats every tracked .cpp/.hpp in place
#   scripts/format.sh --check    changes nothing; lists each unformatted file and exits 1 (CI runs
#                                this from scripts/test.sh)
#   scripts/format.sh FILE...    formats only these files
# The style changes whitespace only (.clang-format: includes never sorted, comments and string
# literals never rewrapped), so formatting cannot change what compiles.
set -euo pipefail
cd "$(dirname "$0")/.."
fmt=${CLANG_FORMAT:-clang-format-14}
if ! command -v "$fmt" >/dev/null; then
  echo "format: $fmt not found; expected the Debian package clang-format-14 (scripts/setup.sh installs it)" >&2
  exit 2
fi
check=0
if [[ ${1:-} == --check ]]; then
  check=1
  shift
fi
files=("$@")
if [[ ${#files[@]} -eq 0 ]]; then
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    mapfile -t files < <(git ls-files '*.cpp' '*.hpp')
  else
    mapfile -t files < <(find . -path ./build -prune -o -path './build-*' -prune -o \( -name '*.cpp' -o -name '*.hpp' \) -print | sed 's|^\./||' | sort)
  fi
fi
if [[ $check -eq 0 ]]; then
  "$fmt" -i --style=file:"$PWD/.clang-format" "${files[@]}"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  if ! "$fmt" --dry-run -Werror --style=file:"$PWD/.clang-format" "$f" >/dev/null 2>&1; then bad+=("$f"); fi
done
if [[ ${#bad[@]} -gt 0 ]]; then
  echo "format: ${#bad[@]} of ${#files[@]} files differ from .clang-format; expected none (run scripts/format.sh, then commit):" >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
echo "format: ${#files[@]} files match .clang-format"
