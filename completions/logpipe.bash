# logpipe.bash -- bash completion for every logpipe tool
#
# Installed as .../bash-completion/completions/logpipe, with a symlink named
# after each tool, so bash-completion's loader finds it under any of those
# names; sourcing it registers the completion of all the tools at once.
# Works without bash-completion too (then with simpler file completion).

# _logpipe_opts TOOL: the long options of TOOL, then its short ones
_logpipe_opts()
{
    local common='--redis --stream --dlq --password-file
        --verbose --quiet --log-format --help --version
        -r -s -v -q -h -V'
    case $1 in
    logpipe-send)
        echo "$common --group --batch --linger --timeout --wal --wal-max
            --flush-wal --max-backlog --time-field --max-age
            --max-skew --max-line --max-depth --require --rejects
            --rejects-to-dlq --ids -g -b -l -t"
        ;;
    logpipe-drain)
        echo "$common --group --dir --consumer --count --block --timeout
            --layout --stdout --once --field --time-field --where
            --claim-idle --max-deliveries --keep
            --max-depth --max-open -g -d -c -n -b -t"
        ;;
    *)
        # a tool newer than this file: ask it
        "$1" --help 2>/dev/null |
            sed -n 's/^ *\(-[A-Za-z0-9]\)\{0,1\},\{0,1\} *\(--[a-z][a-z0-9-]*\).*/\1 \2/p'
        ;;
    esac
}

# _logpipe_takes_arg TOOL OPTION: does OPTION take an argument?
_logpipe_takes_arg()
{
    case $2 in
    --redis|--stream|--dlq|--password-file|--log-format|--group|--dir|\
    --batch|--linger|--timeout|--time-field|--max-age|--max-skew|\
    --max-line|--max-depth|--require|--rejects|--consumer|--count|\
    --block|--layout|--field|--where|--max-open|--claim-idle|\
    --max-deliveries|--keep|--wal|--wal-max|--max-backlog|\
    -r|-s|-g|-d|-b|-l|-t|-c|-n)
        return 0 ;;
    esac
    return 1
}

# _logpipe_files [-d]: file (or directory) names for the current word
_logpipe_files()
{
    if declare -F _filedir >/dev/null; then
        _filedir "$@"
    else
        local IFS=$'\n'
        if [[ $1 == -d ]]; then
            COMPREPLY=($(compgen -d -- "$cur"))
        else
            COMPREPLY=($(compgen -f -- "$cur"))
        fi
    fi
}

_logpipe()
{
    local cur prev words cword split=false
    local tool i

    if declare -F _init_completion >/dev/null; then
        _init_completion -s || return
    else
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=
        ((cword > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
        # --opt=value, split as _init_completion -s does
        if [[ $cur == --*=* ]]; then
            prev=${cur%%=*}
            cur=${cur#*=}
            split=true
        elif [[ $prev == = && $cword -gt 1 ]]; then
            prev=${COMP_WORDS[COMP_CWORD - 2]}
            split=true
        elif [[ $cur == = ]]; then
            prev=${COMP_WORDS[COMP_CWORD - 1]}
            cur=
            split=true
        fi
    fi
    tool=${words[0]##*/}

    if [[ $split == true ]] || _logpipe_takes_arg "$tool" "$prev"; then
        case $prev in
        --password-file|--rejects)
            _logpipe_files
            return ;;
        -d|--dir|--wal)
            _logpipe_files -d
            return ;;
        --log-format)
            COMPREPLY=($(compgen -W 'text json' -- "$cur"))
            return ;;
        -r|--redis)
            COMPREPLY=($(compgen -W 'redis://127.0.0.1:6379/0 unix:///' \
                -- "$cur"))
            return ;;
        --layout)
            COMPREPLY=($(compgen -W "'{service}/%Y-%m-%d.jsonl'" \
                -- "$cur"))
            return ;;
        *)
            if _logpipe_takes_arg "$tool" "$prev"; then
                COMPREPLY=()
                return
            fi ;;
        esac
    fi

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(_logpipe_opts "$tool")" -- "$cur"))
        return
    fi

    # operands: logpipe-send reads files; logpipe-drain takes none
    case $tool in
    logpipe-send)
        _logpipe_files ;;
    logpipe-drain)
        COMPREPLY=() ;;
    *)
        _logpipe_files ;;
    esac
}

complete -F _logpipe logpipe-send logpipe-drain
# sourced through a symlink named after a tool unknown to this file
case ${BASH_SOURCE[0]##*/} in
logpipe-*) complete -F _logpipe "${BASH_SOURCE[0]##*/}" ;;
esac
