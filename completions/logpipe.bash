# logpipe.bash -- bash completion for every logpipe tool
#
# Installed as .../bash-completion/completions/logpipe, with a symlink named
# after each tool, so bash-completion's loader finds it under any of those
# names; sourcing it registers the completion of all the tools at once.
# Works without bash-completion too (then with simpler file completion).

# _logpipe_opts TOOL: the long options of TOOL, then its short ones
_logpipe_opts()
{
    local base='--verbose --quiet --log-format --metrics --metrics-interval
        --help --version -v -q -h -V'
    local common="$base --redis --stream --dlq --password-file --tls-ca
        --tls-server-name --tls-insecure -r -s"
    # a client certificate for Redis (logpipe-http: --redis-tls-cert)
    local tlsclient="--tls-cert --tls-key"
    case $1 in
    logpipe-send)
        echo "$common $tlsclient --group --batch --linger --timeout --wal
            --wal-max
            --flush-wal --max-backlog --replicas --replica-timeout --rate
            --burst --rate-key --on-limit
            --shared-rate --max-keys --time-field --max-age
            --max-skew --max-line --max-depth --max-members --require
            --rejects --rejects-to-dlq --ids --producer --position
            --producer-ttl --shards --shard-key --journal --journal-dir
            --journal-match --from-start --follow --from-end
            --partial-timeout -F -g -b -l -t"
        ;;
    logpipe-http)
        echo "$common --group --listen --tokens --client-field --max-body
            --max-connections --idle-timeout --read-timeout --max-header
            --tls-cert --tls-key --redis-tls-cert --redis-tls-key --batch
            --linger --wal --wal-max
            --max-backlog --replicas --replica-timeout --rate --rate-key
            --on-limit --shared-rate --burst --max-keys
            --time-field --max-age --max-skew --max-line --max-depth
            --max-members --require --rejects-to-dlq --idempotency-ttl
            --producer-ttl -g -b -l"
        ;;
    logpipe-drain)
        # --block has no short form
        echo "$common $tlsclient --group --dir --consumer --count --block
            --timeout
            --layout --stdout --exec --exec-timeout --sql --once --field
            --time-field --where --claim-idle --max-deliveries --keep
            --max-depth --max-open --max-files --max-line --max-members
            --max-dlq-size --shared-dir --shard-range -g -d -c -n -t"
        ;;
    logpipe-rotate)
        echo "$base --dir --layout --grace --level --retain --max-size
            --jobs --dry-run -d -j -n"
        ;;
    logpipe-replay)
        echo "$common $tlsclient --dir --layout --since --until
            --time-field --where
            --strip-id --dedup --sort --from-redis --field --max-line -d"
        ;;
    logpipe-dlq)
        echo "$common $tlsclient --limit --where --all --older-than
            --dry-run --timeout
            -n -t"
        ;;
    logpipe-stat)
        echo "$common $tlsclient --group --dir --wal --timeout --prom
            --producers
            --check --max-lag
            --max-pending --max-pending-age --max-dlq --max-journal-age -g -d
            -t"
        ;;
    logpipe-agg)
        # reads stdin, talks to no Redis
        echo "$base --bucket --by --sum --max --lateness --threshold --sql
            --max-groups --time-field --max-line"
        ;;
    *)
        # a tool newer than this file: ask it
        "$1" --help 2>/dev/null |
            sed -n 's/^ *\(-[A-Za-z0-9]\)\{0,1\},\{0,1\} *\(--[a-z][a-z0-9-]*\).*/\1 \2/p'
        ;;
    esac
}

# _logpipe_takes_arg TOOL OPTION: does OPTION of TOOL take an argument?
_logpipe_takes_arg()
{
    case $2 in
    --log-format|--metrics|--metrics-interval)
        return 0 ;;
    esac
    case $1 in
    logpipe-rotate)
        case $2 in
        --dir|--layout|--grace|--level|--retain|--max-size|--jobs|-d|-j)
            return 0 ;;
        esac
        return 1 ;;
    logpipe-agg)
        case $2 in
        --bucket|--by|--sum|--max|--lateness|--threshold|--sql|\
        --max-groups|--time-field|--max-line)
            return 0 ;;
        esac
        return 1 ;;
    esac
    case $2 in
    --redis|--stream|--dlq|--password-file|--tls-ca|--tls-server-name|-r|-s)
        return 0 ;;
    --tls-cert|--tls-key)
        # Redis's client certificate, or logpipe-http's own
        return 0 ;;
    esac
    case $1 in
    logpipe-send)
        case $2 in
        --group|--batch|--linger|--timeout|--wal|--wal-max|--max-backlog|\
        --replicas|--replica-timeout|\
        --rate|--burst|--rate-key|--on-limit|--max-keys|\
        --time-field|--max-age|--max-skew|--max-line|--max-depth|\
        --max-members|--require|--rejects|--producer|--position|\
        --producer-ttl|--shards|--shard-key|--journal-dir|--journal-match|\
        --partial-timeout|--follow|-F|-g|-b|-l|-t)
            return 0 ;;
        esac ;;
    logpipe-http)
        case $2 in
        --group|--listen|--tokens|--client-field|--max-body|\
        --replicas|--replica-timeout|\
        --max-connections|--idle-timeout|--read-timeout|--max-header|\
        --tls-cert|--tls-key|--redis-tls-cert|--redis-tls-key|--batch|\
        --linger|--wal|--wal-max|--max-backlog|--rate|--rate-key|--burst|\
        --max-keys|--time-field|\
        --max-age|--max-skew|--max-line|--max-depth|--max-members|\
        --require|--idempotency-ttl|--producer-ttl|-g|-b|-l)
            return 0 ;;
        esac ;;
    logpipe-drain)
        case $2 in
        --group|--dir|--consumer|--count|--block|--timeout|--layout|\
        --field|--time-field|--where|--claim-idle|--max-deliveries|--keep|\
        --max-depth|--max-open|--max-files|--max-line|--max-members|\
        --max-dlq-size|--shard-range|--exec|--exec-timeout|--sql|\
        -g|-d|-c|-n|-t)
            return 0 ;;
        esac ;;
    logpipe-replay)
        case $2 in
        --dir|--layout|--since|--until|--time-field|--where|--field|\
        --max-line|-d)
            return 0 ;;
        esac ;;
    logpipe-dlq)
        case $2 in
        --limit|--where|--older-than|--timeout|-t)
            return 0 ;;
        esac ;;
    logpipe-stat)
        case $2 in
        --group|--dir|--wal|--timeout|--max-lag|--max-pending|\
        --max-pending-age|--max-dlq|--max-journal-age|-g|-d|-t)
            return 0 ;;
        esac ;;
    *)
        # a tool newer than this file: as in either tool
        if _logpipe_takes_arg logpipe-send "$2" ||
            _logpipe_takes_arg logpipe-drain "$2"; then
            return 0
        fi ;;
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
        --password-file|--rejects|--metrics|--tokens|--tls-cert|--tls-key|\
        --tls-ca|--redis-tls-cert|--redis-tls-key)
            _logpipe_files
            return ;;
        -d|--dir|--wal|--journal-dir)
            _logpipe_files -d
            return ;;
        --log-format)
            COMPREPLY=($(compgen -W 'text json' -- "$cur"))
            return ;;
        --on-limit)
            COMPREPLY=($(compgen -W 'block reject dlq' -- "$cur"))
            return ;;
        --level)
            COMPREPLY=($(compgen -W '1 2 3 4 5 6 7 8 9' -- "$cur"))
            return ;;
        --bucket)
            COMPREPLY=($(compgen -W '10s 1m 5m 15m 1h 1d' -- "$cur"))
            return ;;
        --lateness)
            COMPREPLY=($(compgen -W 'end 0 10s 1m' -- "$cur"))
            return ;;
        --listen)
            # read, not split: "*" and "[::1]" would glob
            mapfile -t COMPREPLY < <(compgen \
                -W '127.0.0.1:8088 [::1]:8088 *:8088' -- "$cur")
            return ;;
        -r|--redis)
            COMPREPLY=($(compgen \
                -W 'redis://127.0.0.1:6379/0 rediss:// unix:///' \
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

    # operands: send reads files, replay files and directories; dlq a
    # command, then stream IDs; drain, rotate, stat, agg and http take none
    case $tool in
    logpipe-send|logpipe-replay)
        _logpipe_files ;;
    logpipe-dlq)
        COMPREPLY=()
        for ((i = 1; i < cword; i++)); do
            case ${words[i]} in
            list|show|stats|retry|purge|export)
                return ;;
            esac
        done
        COMPREPLY=($(compgen -W 'list show stats retry purge export' \
            -- "$cur")) ;;
    logpipe-drain|logpipe-rotate|logpipe-stat|logpipe-agg|logpipe-http)
        COMPREPLY=() ;;
    *)
        _logpipe_files ;;
    esac
}

complete -F _logpipe logpipe-send logpipe-drain logpipe-rotate logpipe-replay
complete -F _logpipe logpipe-dlq logpipe-stat logpipe-agg logpipe-http
# sourced through a symlink named after a tool unknown to this file
case ${BASH_SOURCE[0]##*/} in
logpipe-*) complete -F _logpipe "${BASH_SOURCE[0]##*/}" ;;
esac
