# bash completion for fo-run: options (as `fo-run --help` lists them), the values of
# --target, --drill-scenario and --backend, stack names after --stack, URNs after --only
# and `state show|rm|mv`, files otherwise. The candidates come from the fo-run being
# completed (lua/fo/cli/complete.lua), which reads local files only.
_fo_run() {
    local line=${COMP_LINE:0:COMP_POINT}
    local cur=${line##*[[:space:]]}
    local exe=${COMP_WORDS[0]} IFS=$'\n'
    exe=${exe/#\~/$HOME}
    [[ $exe == */* && -x $exe ]] || exe=fo-run
    COMPREPLY=($(COMP_LINE=$line COMP_POINT=${#line} "$exe" \
        -e 'require("fo.cli.complete").main()' 2>/dev/null))
    # bash replaces only the part of the word after its last COMP_WORDBREAKS character
    # (the ':' of a URN, the '=' of --stack=NAME): the candidates lose what comes before.
    local keep=${cur%"${cur##*[$COMP_WORDBREAKS]}"}
    if [[ -n $keep ]]; then
        COMPREPLY=("${COMPREPLY[@]#"$keep"}")
    fi
}
complete -o default -F _fo_run fo-run
