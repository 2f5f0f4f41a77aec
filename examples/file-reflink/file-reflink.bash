# SPDX-License-Identifier: BSL-1.0
# bash completion for file-reflink. The command says what fits the word
# being typed (file-reflink __complete WORDS...), from its own definition of
# its commands and options and, for volume ids and revisions, from the pool
# the command line names. Its first line says how: words (the lines after
# it), dirs or files (file names, completed here).
_file_reflink() {
    local cur=${COMP_WORDS[COMP_CWORD]} cmd=${COMP_WORDS[0]}
    type -P -- "$cmd" >/dev/null 2>&1 || cmd=file-reflink
    local -a reply
    mapfile -t reply < <("$cmd" __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)
    COMPREPLY=()
    case ${reply[0]-} in
        dirs)
            compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -d -- "$cur") ;;
        files)
            compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
        words)
            COMPREPLY=("${reply[@]:1}") ;;
    esac
}
complete -F _file_reflink file-reflink
