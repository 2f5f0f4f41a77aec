#!/bin/bash
# SPDX-License-Identifier: BSL-1.0
# transcripts.sh fails on what it must not accept (a different output, a
# different exit status, a console block without a marker, a shell block no
# test runs) and passes the control; exits 77 where it is skipped.
#
#   transcripts_selftest.sh transcripts.sh FILE_REFLINK_COMMAND
set -u
script=${1:?} command=${2:?}
work=$(mktemp -d /tmp/file-reflink-transcripts-selftest.XXXXXX) || exit 1
trap 'rm -rf "$work"' EXIT

expect() {  # expect NAME STATUS TEXT-IN-OUTPUT README-CONTENT
  local name=$1 want=$2 text=$3
  printf '%s' "$4" >"$work/$name.md"
  bash "$script" "$work/$name.md" "$command" >"$work/$name.out" 2>&1
  local got=$?
  [[ $got == 77 ]] && { cat "$work/$name.out"; exit 77; }
  if [[ $got != "$want" ]] || ! grep -qF -- "$text" "$work/$name.out"; then
    echo "$name: expected exit status $want and '$text', got $got:"
    sed 's/^/  | /' "$work/$name.out"
    failed=1
  else
    echo "$name: exit status $got, as expected"
  fi
}
failed=0
fence='```'
expect control 0 "2 commands run, 0 failures" "<!-- transcript: fresh -->
${fence}console
# file-reflink pool init /var/lib/vmpool
# echo made at 2001-02-03T04:05:06Z; echo; echo last
made at 2026-11-27T14:07:36Z
...
last
$fence
"
expect output 1 "README.md:3: # echo goodbye" "<!-- transcript: fresh -->
${fence}console
# echo goodbye
hello
$fence
"
expect status 1 "expected exit status 0" "<!-- transcript: fresh -->
${fence}console
# file-reflink volume info /var/lib/vmpool no/such
$fence
"
expect unmarked 1 "a console block without a transcript marker" "${fence}console
# echo hello
hello
$fence
"
expect shell 1 "a shell block that no test runs" "${fence}sh
ls
$fence
"
exit $failed
