#!/bin/bash
# SPDX-License-Identifier: BSL-1.0
# Runs the command transcripts of README.md and compares what they print
# with what the README shows. The conventions are in tests/readme/README.md.
#
#   transcripts.sh README.md FILE_REFLINK_COMMAND
#
# Every ```console block is a transcript and has a marker on the line before
# it: <!-- transcript: fresh --> (run on new filesystems) or
# <!-- transcript: continues --> (run after the previous transcript, on its
# filesystems); every one runs. The other shell blocks (```sh, ```bash) are the ones listed in not_run below,
# each with the reason; any other is an error.
#
# The transcripts run as root in a private mount namespace, where a tmpfs
# covers /var/lib and a btrfs (20 GiB, sparse) is mounted on /var/lib/vmpool
# and another on /var/lib/vmpool2: the README's paths are the real ones, and
# nothing stays mounted when the script ends. Commands run with bash -o
# pipefail in a scratch working directory, with the built command first in
# PATH as file-reflink. Exit status 77 (skipped) when this cannot be done.
set -u

readme=${1:?usage: transcripts.sh README.md FILE_REFLINK_COMMAND}
command=${2:?usage: transcripts.sh README.md FILE_REFLINK_COMMAND}

# Shell blocks that are not transcripts, by their first line.
declare -A not_run=(
  ["# 1. the demo: installs what is missing, builds the file-reflink command, runs a narrated session of it"]="CI runs these two commands on a clean machine"
  ["build/tests/reliability/file_reflink_reliability --report   # the table of tests/reliability/README.md (as root)"]="the reliability report and sweeps: ctest and .ci/reliability run them"
  ["build/tests/bench/file_reflink_bench                # full run, as root: btrfs, XFS, ext4 loop mounts and MemoryFsOps (3 min)"]="the benchmark: ctest runs bench.short"
  ["file-reflink volume send /var/lib/vmpool vm/private --since 4 | ssh host file-reflink volume receive /var/lib/vmpool vm/private"]="needs a second machine"
)

skip() { echo "skipped: README transcripts: $*"; exit 77; }

if [[ ${FILE_REFLINK_TRANSCRIPT_INSIDE:-} != 1 ]]; then
  [[ $(id -u) == 0 ]] || skip "not root (they mount btrfs loop images)"
  for tool in unshare mount mkfs.btrfs losetup; do
    command -v "$tool" >/dev/null || skip "no $tool"
  done
  unshare --mount --propagation private -- true 2>/dev/null || skip "no private mount namespace (unshare --mount)"
  exec env FILE_REFLINK_TRANSCRIPT_INSIDE=1 unshare --mount --propagation private -- bash "$(realpath "$0")" "$@"
fi

readme=$(realpath "$readme")
command=$(realpath "$command")
scratch=$(mktemp -d /tmp/file-reflink-readme.XXXXXX) || exit 1
trap 'cd /; umount -R /var/lib 2>/dev/null; rm -rf "$scratch"' EXIT
mkdir -p "$scratch/bin" && ln -s "$command" "$scratch/bin/file-reflink"
mount -t tmpfs readme-transcripts /var/lib || skip "cannot mount a tmpfs on /var/lib"

# New filesystems for a fresh transcript: every mount below /var/lib goes,
# and each pool directory gets a new btrfs.
fresh_filesystems() {
  cd /
  while mountpoint -q /var/lib/vmpool || mountpoint -q /var/lib/vmpool2; do
    umount /var/lib/vmpool 2>/dev/null
    umount /var/lib/vmpool2 2>/dev/null
  done
  rm -rf "${scratch:?}/home" "${scratch:?}"/*.btrfs /var/lib/vmpool /var/lib/vmpool2
  local d
  for d in vmpool vmpool2; do
    truncate -s 20G "$scratch/$d.btrfs" &&
      mkfs.btrfs -q "$scratch/$d.btrfs" >/dev/null &&
      mkdir -p /var/lib/$d &&
      mount -o loop "$scratch/$d.btrfs" /var/lib/$d || skip "cannot make a btrfs on /var/lib/$d"
  done
  mkdir -p "$scratch/home"
  cd "$scratch/home" || exit 1
}

# Both sides of a comparison: timestamps are compared as timestamps.
normalise() {
  sed -E -e 's/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z/<timestamp>/g' \
         -e 's/[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}/<timestamp>/g'
}

# Whether the output $2 matches the expected lines $1: a line "..." matches
# any number of lines, "..." inside a line any characters, the rest exactly.
matches() {
  awk -v expected_file="$1" '
    function esc(s) { gsub(/[][\\^$.|?*+(){}]/, "\\\\&", s); return s }
    function m(i, j,   k) {
      if (i > ne) return j > na
      if (e[i] == "...") {
        for (k = j; k <= na + 1; k++) if (m(i + 1, k)) return 1
        return 0
      }
      if (j > na) return 0
      if (!(a[j] ~ re[i])) return 0
      return m(i + 1, j + 1)
    }
    BEGIN {
      ne = 0
      while ((getline line < expected_file) > 0) {
        e[++ne] = line
        n = split(line, parts, /\.\.\./)
        r = esc(parts[1])
        for (p = 2; p <= n; p++) r = r ".*" esc(parts[p])
        re[ne] = "^" r "$"
      }
    }
    { a[++na] = $0 }
    END { exit m(1, 1) ? 0 : 1 }
  ' "$2"
}

failures=0
ran=0
started=0

# Runs one transcript, whose lines are in the file $1, from README line $2.
run_transcript() {
  local file=$1 first=$2 line cmd="" cmd_line=0 n=0 expected status
  local -a lines
  mapfile -t lines <"$file"
  lines+=("# ")  # a sentinel command ends the last one's output
  expected=$(mktemp "$scratch/expected.XXXXXX")
  : >"$expected"
  for line in "${lines[@]}"; do
    n=$((n + 1))
    if [[ $line == "# "* ]]; then
      if [[ -n $cmd ]]; then
        status=0
        if grep -qE '^\[exit status [0-9]+\]$' "$expected"; then
          status=$(grep -E '^\[exit status [0-9]+\]$' "$expected" | tr -dc 0-9)
          sed -i -E '/^\[exit status [0-9]+\]$/d' "$expected"
        fi
        local actual got
        actual=$(mktemp "$scratch/actual.XXXXXX")
        PATH="$scratch/bin:$PATH" bash -o pipefail -c "$cmd" >"$actual" 2>&1 </dev/null
        got=$?
        ran=$((ran + 1))
        if [[ $got != "$status" ]] || ! matches <(normalise <"$expected") <(normalise <"$actual"); then
          failures=$((failures + 1))
          echo "README.md:$cmd_line: # $cmd"
          echo "  expected exit status $status, output:"
          sed 's/^/    | /' "$expected"
          echo "  got exit status $got, output:"
          sed 's/^/    | /' "$actual"
        fi
        rm -f "$actual"
      fi
      cmd=${line#"# "}
      cmd_line=$((first + n - 1))
      : >"$expected"
    elif [[ -z $cmd ]]; then
      failures=$((failures + 1))
      echo "README.md:$((first + n - 1)): output before the first command of a transcript"
    else
      printf '%s\n' "$line" >>"$expected"
    fi
  done
  rm -f "$expected"
}

marker=""
marker_line=0
line_no=0
in_block=""
block_file="$scratch/block"
while IFS= read -r line || [[ -n $line ]]; do
  line_no=$((line_no + 1))
  if [[ -n $in_block ]]; then
    if [[ $line == '```' ]]; then
      case $in_block in
        console)
          case $marker in
            fresh) fresh_filesystems; started=1; run_transcript "$block_file" "$block_start" ;;
            continues)
              if [[ $started == 0 ]]; then
                failures=$((failures + 1))
                echo "README.md:$block_start: a transcript that continues follows none"
              else
                run_transcript "$block_file" "$block_start"
              fi ;;
            "")
              failures=$((failures + 1))
              echo "README.md:$block_start: a console block without a transcript marker" ;;
            *)
              failures=$((failures + 1))
              echo "README.md:$marker_line: unknown transcript marker '$marker'" ;;
          esac ;;
        other)
          first=$(head -n 1 "$block_file")
          if [[ -n $marker ]]; then
            failures=$((failures + 1))
            echo "README.md:$marker_line: transcript marker before a block that is not \`\`\`console"
          elif [[ -z ${not_run[$first]+x} ]]; then
            failures=$((failures + 1))
            echo "README.md:$block_start: a shell block that no test runs (make it a \`\`\`console transcript)"
          else
            echo "README.md:$block_start: not run here: ${not_run[$first]}"
          fi ;;
      esac
      in_block=""
      marker=""
    else
      printf '%s\n' "$line" >>"$block_file"
    fi
    continue
  fi
  if [[ $line =~ ^\<!--\ transcript:\ (.*)\ --\>$ ]]; then
    marker=${BASH_REMATCH[1]}
    marker_line=$line_no
    continue
  fi
  if [[ $line == '```'* ]]; then
    info=${line#'```'}
    block_start=$((line_no + 1))
    : >"$block_file"
    case $info in
      console) in_block=console ;;
      sh | bash | shell | shell-session | zsh) in_block=other ;;
      *)
        if [[ -n $marker ]]; then
          failures=$((failures + 1))
          echo "README.md:$marker_line: transcript marker before a \`\`\`$info block"
        fi
        marker=""
        in_block=skip ;;
    esac
    continue
  fi
  if [[ -n $marker && -n ${line// /} ]]; then
    failures=$((failures + 1))
    echo "README.md:$marker_line: transcript marker not followed by a block"
    marker=""
  fi
done <"$readme"

echo "$ran commands run, $failures failures"
[[ $ran -gt 0 && $failures == 0 ]]
