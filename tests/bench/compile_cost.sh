#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# What file_reflink costs an embedder's build, in one run, as ratios to the
# parse of <boost/filesystem.hpp> (which every embedder pays anyway):
#
#   (a)  a TU including only <boost/filesystem.hpp>: -fsyntax-only, and -O2 -c
#   (b)  a TU including only the umbrella <file_reflink/file_reflink.hpp>: -fsyntax-only,
#        header-only (the default), and (b2) with FILE_REFLINK_SEPARATE_COMPILATION
#   (c)  a TU including <file_reflink/pool.hpp> and <file_reflink/fs_ops/linux.hpp>
#        (no MemoryFsOps): -fsyntax-only
#   (d)  tests/bench/compile_cost/every_operation.cpp, every public member
#        function of Pool and Volume on LinuxFsOps: -O2 -c, header-only (the default)
#   (e)  the same TU with FILE_REFLINK_SEPARATE_COMPILATION: -O2 -c
#   (f)  src/file_reflink.cpp, the library of the separately compiled mode (paid
#        once, not per TU): -O2 -c
#
# Each is compiled REPS times (interleaved, so a busy machine slows all of
# them alike); the table has the minimum CPU time (user+sys) and the largest
# peak RSS, and each time over (a)'s -fsyntax-only time. The targets (the
# redesign issue): (b) <= 1.5x, and a TU using every operation <= 4x.
#
# Usage, from anywhere (it works from the repository root):
#   tests/bench/compile_cost.sh [COMPILER [REPS]]       default: g++ 3
# Extra flags for every compilation: CXXFLAGS="..." (e.g. -I for Boost).
# CPU time and peak RSS come from /usr/bin/time (GNU time); without it, from
# bash's `time`, and the RSS column says "-".
set -euo pipefail

cxx=${1:-g++}
reps=${2:-3}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

read -r -a extra <<<"${CXXFLAGS:-}"
flags=(-std=c++17 -Iinclude "${extra[@]}")
echo '#include <boost/filesystem.hpp>' >"$work/boost.cpp"
echo '#include <file_reflink/file_reflink.hpp>' >"$work/umbrella.cpp"
printf '#include <file_reflink/pool.hpp>\n#include <file_reflink/fs_ops/linux.hpp>\n' >"$work/pool_linux.cpp"

# name | description | arguments
cases=(
  "a|(a) <boost/filesystem.hpp> -fsyntax-only|-fsyntax-only $work/boost.cpp"
  "a2|(a) <boost/filesystem.hpp> -O2 -c|-O2 -c $work/boost.cpp -o $work/boost.o"
  "b|(b) umbrella file_reflink.hpp -fsyntax-only|-fsyntax-only $work/umbrella.cpp"
  "b2|(b2) umbrella, separate, -fsyntax-only|-DFILE_REFLINK_SEPARATE_COMPILATION -fsyntax-only $work/umbrella.cpp"
  "c|(c) pool.hpp + fs_ops/linux.hpp -fsyntax-only|-fsyntax-only $work/pool_linux.cpp"
  "d|(d) every operation, header-only, -O2 -c|-O2 -c tests/bench/compile_cost/every_operation.cpp -o $work/d.o"
  "e|(e) every operation, separate, -O2 -c|-DFILE_REFLINK_SEPARATE_COMPILATION -O2 -c tests/bench/compile_cost/every_operation.cpp -o $work/e.o"
  "f|(f) src/file_reflink.cpp (once), -O2 -c|-DFILE_REFLINK_SEPARATE_COMPILATION -O2 -c src/file_reflink.cpp -o $work/f.o"
)

declare -A best rss
measure() {  # name, arguments...: prints "cpu_seconds rss_kib"
  local name=$1
  shift
  if [[ -x /usr/bin/time ]]; then
    /usr/bin/time -f '%U %S %M' -o "$work/time" "$cxx" "${flags[@]}" "$@" >/dev/null 2>"$work/err" ||
      { cat "$work/err" >&2; echo "compile_cost.sh: ($name) failed" >&2; exit 1; }
    awk '{ printf "%.2f %d\n", $1 + $2, $3 }' "$work/time"
  else
    local TIMEFORMAT='%U %S'
    { time "$cxx" "${flags[@]}" "$@" >/dev/null 2>"$work/err"; } 2>"$work/time" ||
      { cat "$work/err" >&2; echo "compile_cost.sh: ($name) failed" >&2; exit 1; }
    awk '{ printf "%.2f -\n", $1 + $2 }' "$work/time"
  fi
}

echo "compile_cost.sh: $("$cxx" --version | head -n 1); $reps repetitions; $(nproc) CPUs; $(date -u +%Y-%m-%dT%H:%MZ)"
for ((rep = 1; rep <= reps; ++rep)); do
  for c in "${cases[@]}"; do
    IFS='|' read -r name _ args <<<"$c"
    # shellcheck disable=SC2086  # the arguments are words on purpose
    read -r t m <<<"$(measure "$name" $args)"
    if [[ -z ${best[$name]:-} ]] || awk -v a="$t" -v b="${best[$name]}" 'BEGIN { exit !(a < b) }'; then
      best[$name]=$t
    fi
    if [[ $m != - ]] && { [[ -z ${rss[$name]:-} ]] || ((m > rss[$name])); }; then rss[$name]=$m; fi
    [[ $m == - ]] && rss[$name]=-
  done
done

base=${best[a]}
printf '%-48s %9s %9s %8s\n' "translation unit" "CPU s" "peak MB" "x (a)"
for c in "${cases[@]}"; do
  IFS='|' read -r name what _ <<<"$c"
  mb=-
  [[ ${rss[$name]} != - ]] && mb=$((rss[$name] / 1024))
  printf '%-48s %9s %9s %8s\n' "$what" "${best[$name]}" "$mb" "$(awk -v t="${best[$name]}" -v b="$base" 'BEGIN { printf "%.1f", t / b }')"
done
ratio() { awk -v t="${best[$1]}" -v b="$base" 'BEGIN { printf "%.2f", t / b }'; }
verdict() { awk -v r="$1" -v l="$2" 'BEGIN { print (r <= l ? "met" : "not met") }'; }
echo "targets: (b) umbrella parse $(ratio b)x <= 1.5x: $(verdict "$(ratio b)" 1.5);" \
  "(b2) separate $(ratio b2)x <= 1.5x: $(verdict "$(ratio b2)" 1.5);" \
  "(d) header-only $(ratio d)x <= 4x: $(verdict "$(ratio d)" 4);" \
  "(e) separate $(ratio e)x <= 4x: $(verdict "$(ratio e)" 4)"
