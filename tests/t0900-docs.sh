#!/bin/sh
# t0900-docs.sh -- every option of every tool is in its --help, its man
# page and both completions; the man pages and completions are well formed
. "$(dirname "$0")/lib.sh"

MANDIR=$TOP/man
BASHCOMP=$TOP/completions/logpipe.bash
ZSHCOMP=$TOP/completions/_logpipe
BS=$(printf '\b')

# The long options of lib/lp_opt.h's LP_LONG_* macros, as "MACRO name"
# lines: every { "name", ... } row of a #define and its continuations, and
# those of the LP_LONG_* macros it uses (LP_LONG_TLS uses LP_LONG_TLS_SERVER).
awk '
function expand(m,    i) {
    for (i = 1; i <= n[m]; i++)
        if (item[m, i] ~ /^@/)
            expand(substr(item[m, i], 2))
        else
            print top, item[m, i]
}
/^#define LP_LONG_[A-Z_]*/ { mac = $2; on = 1; order[++nmac] = mac; first = 1 }
on {
    line = $0
    if (first) {
        sub(/^#define LP_LONG_[A-Z_]*/, "", line)
        first = 0
    }
    while (match(line, /[{] *"[^"]*"|LP_LONG_[A-Z_]+/)) {
        s = substr(line, RSTART, RLENGTH)
        if (s ~ /^LP_LONG_/)
            s = "@" s
        else {
            sub(/^[{] *"/, "", s)
            sub(/"$/, "", s)
        }
        item[mac, ++n[mac]] = s
        line = substr(line, RSTART + RLENGTH)
    }
    if ($0 !~ /\\$/)
        on = 0
}
END { for (i = 1; i <= nmac; i++) { top = order[i]; expand(top) } }
' "$TOP/lib/lp_opt.h" >"$TMP/macros"

# long_opts FILE.c: the long options of a tool's longopts[] table, the
# LP_LONG_* macros it uses expanded, one per line. Fails on a macro that
# lp_opt.h does not define or a table it cannot find.
long_opts() {
    awk '
    /longopts\[\][ \t]*=[ \t]*[{]/ { on = 1; found = 1; next }
    on && /^[}];/ { on = 0 }
    on {
        line = $0
        while (match(line, /[{] *"[^"]*"/)) {
            s = substr(line, RSTART, RLENGTH)
            sub(/^[{] *"/, "", s)
            sub(/"$/, "", s)
            print "opt", s
            line = substr(line, RSTART + RLENGTH)
        }
        line = $0
        while (match(line, /LP_LONG_[A-Z_]+/)) {
            print "macro", substr(line, RSTART, RLENGTH)
            line = substr(line, RSTART + RLENGTH)
        }
    }
    END { if (!found) { print "no longopts[] table" > "/dev/stderr"; exit 1 } }
    ' "$1" >"$TMP/rows" || return 1
    while read -r kind name; do
        if [ "$kind" = opt ]; then
            echo "$name"
        else
            grep "^$name " "$TMP/macros" | cut -d' ' -f2 >"$TMP/exp"
            if [ ! -s "$TMP/exp" ]; then
                echo "$1: macro $name is not defined in lib/lp_opt.h" >&2
                return 1
            fi
            cat "$TMP/exp"
        fi
    done <"$TMP/rows"
}

# has_opt NAME FILE: "--NAME" is in FILE as a whole option name
has_opt() {
    grep -E -q -e "(^|[^A-Za-z0-9_-])--$1([^A-Za-z0-9_-]|\$)" "$2"
}

# check_opts WHAT FILE OPTS: every option of the list OPTS is in FILE
check_opts() {
    missing=""
    while read -r o; do
        has_opt "$o" "$2" || missing="$missing --$o"
    done <"$3"
    if [ -n "$missing" ]; then
        echo "$1 lacks:$missing" >&2
        return 1
    fi
}

# option_items PAGE OUT: the .It lines of the OPTIONS section of PAGE,
# with "Fl -name" written "--name"
option_items() {
    awk '/^\.Sh /{ on = ($0 == ".Sh OPTIONS") } on && /^\.It /' "$1" |
        sed -e 's/Fl -/--/g' >"$2"
}

# render PAGE OUT: the page as a reader sees it, without overstrikes,
# wide enough that no line is broken
render() {
    mandoc -Tascii -Owidth=400 "$1" >"$2.raw" &&
        sed -e "s/.$BS//g" "$2.raw" >"$2"
}

test_expect_success 'lib/lp_opt.h: the LP_LONG_* macros are understood' '
    grep_q "^LP_LONG_LOG verbose$" "$TMP/macros" &&
    grep_q "^LP_LONG_LOG version$" "$TMP/macros" &&
    grep_q "^LP_LONG_REDIS redis$" "$TMP/macros" &&
    test "$(grep -c "^LP_LONG_LOG " "$TMP/macros")" -eq 5 &&
    grep_q "^LP_LONG_TLS tls-ca$" "$TMP/macros" &&
    grep_q "^LP_LONG_TLS_REDIS redis-tls-key$" "$TMP/macros"
'

# complete WITH_BASH_COMPLETION WORD...: runs the completion of the tools'
# bash file for the command line WORD... (the last word being completed),
# sourced through a symlink named after the tool as bash-completion's
# loader does, and prints the candidates, one per line.
complete_bash() {
    with=$1
    shift
    mkdir -p "$TMP/bc"
    ln -sf "$BASHCOMP" "$TMP/bc/$1"
    bash -c '
        with=$1; shift
        bc=/usr/share/bash-completion/bash_completion
        if [ "$with" = 1 ]; then
            [ -f "$bc" ] || { echo "no $bc" >&2; exit 1; }
            . "$bc"
        fi
        . "$TMPDIR_BC/$1" || exit 1
        COMP_WORDS=("$@")
        COMP_CWORD=$(($# - 1))
        COMP_LINE="$*"
        COMP_POINT=${#COMP_LINE}
        fn=$(complete -p "$1" | sed -n "s/.*-F \([^ ]*\) .*/\1/p")
        [ -n "$fn" ] || { echo "no completion for $1" >&2; exit 1; }
        "$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf "%s\n" "${COMPREPLY[@]}"
    ' complete_bash "$with" "$@"
}
TMPDIR_BC=$TMP/bc
export TMPDIR_BC
HAVE_BC=0
[ -f /usr/share/bash-completion/bash_completion ] && HAVE_BC=1

tools=""
for c in "$TOP"/cmd/logpipe-*.c; do
    [ -f "$c" ] || continue
    tools="$tools $(basename "$c" .c)"
done

test_expect_success 'tools are found in cmd/' '
    test -n "$tools" &&
    case " $tools " in *" logpipe-send "*) ;; *) false ;; esac
'

for tool in $tools; do
    src=$TOP/cmd/$tool.c
    opts=$TMP/$tool.opts
    page=$MANDIR/$tool.1

    test_expect_success "$tool: long options extracted from longopts[]" '
        long_opts "$src" >"$opts" &&
        cat "$opts" &&
        grep_q "^help$" "$opts" &&
        grep_q "^version$" "$opts" &&
        test "$(wc -l <"$opts")" -gt 5
    '

    test_expect_success "$tool: --help names every long option" '
        test -x "$TOP/cmd/$tool" || { echo "$tool is not built: make" >&2; false; }
        "$TOP/cmd/$tool" --help >"$TMP/$tool.help" &&
        check_opts "$tool --help" "$TMP/$tool.help" "$opts"
    '

    test_expect_success "$tool: man page has an OPTIONS item for each" '
        test -f "$page" &&
        option_items "$page" "$TMP/$tool.items" &&
        check_opts "OPTIONS of man/$tool.1" "$TMP/$tool.items" "$opts"
    '

    test_expect_success "$tool: rendered man page names every long option" '
        render "$page" "$TMP/$tool.man" &&
        check_opts "man/$tool.1 as rendered" "$TMP/$tool.man" "$opts"
    '

    test_expect_success "$tool: bash completion offers every long option" '
        complete_bash $HAVE_BC "$tool" -- >"$TMP/$tool.bash" &&
        sed "s/^/--/" "$opts" | while read -r o; do
            grep -q -x -e "$o" "$TMP/$tool.bash" ||
            { echo "bash completion of $tool -- lacks $o" >&2; exit 1; }
        done &&
        { grep "^complete -F " "$BASHCOMP" | tr " " "\n" | grep -q -x "$tool" ||
          { echo "no complete -F line for $tool" >&2; false; }; }
    '

    test_expect_success "$tool: zsh completion offers every long option" '
        check_opts "completions/_logpipe" "$ZSHCOMP" "$opts" &&
        { head -n 1 "$ZSHCOMP" | grep "^#compdef " | tr " " "\n" |
            grep -q -x "$tool" || { echo "$tool not in #compdef" >&2; false; }; }
    '
done

test_expect_success 'man pages have ENVIRONMENT, EXIT STATUS and EXAMPLES' '
    n=0
    for p in "$MANDIR"/*.[1-9]; do
        for s in ENVIRONMENT "EXIT STATUS" EXAMPLES; do
            grep -q "^\.Sh $s\$" "$p" || { echo "$p: no .Sh $s" >&2; n=1; }
        done
    done
    test -f "$MANDIR/logpipe.7" && test $n -eq 0
'

test_expect_success 'mandoc -Tlint -Wwarning is clean on every page' '
    rc=0
    mandoc -Tlint -Wwarning "$MANDIR"/*.[1-9] >"$TMP/lint" 2>&1 || rc=$?
    grep -v "outdated mandoc.db" "$TMP/lint" >"$TMP/lint2" || :
    cat "$TMP/lint2"
    test $rc -eq 0 && test ! -s "$TMP/lint2"
'

test_expect_success 'man pages render' '
    for p in "$MANDIR"/*.[1-9]; do
        render "$p" "$TMP/page" &&
        grep_q "^DESCRIPTION$" "$TMP/page" &&
        test "$(wc -l <"$TMP/page")" -gt 40 || exit 1
    done
'

test_expect_success 'bash -n completions/logpipe.bash' '
    bash -n "$BASHCOMP"
'

if command -v zsh >/dev/null 2>&1; then
    test_expect_success 'zsh -n completions/_logpipe' '
        zsh -n "$ZSHCOMP"
    '
else
    test_skip 'zsh -n completions/_logpipe' 'no zsh'
fi

if [ -f /usr/share/bash-completion/bash_completion ]; then
    test_expect_success 'bash: "logpipe-drain --la" offers --layout' '
        complete_bash 1 logpipe-drain --la >"$TMP/c" &&
        echo --layout >"$TMP/expect" &&
        test_cmp "$TMP/expect" "$TMP/c"
    '
else
    test_skip 'bash: "logpipe-drain --la" offers --layout' 'no bash-completion'
fi

test_expect_success 'bash, without bash-completion: --la offers --layout' '
    complete_bash 0 logpipe-drain --la >"$TMP/c" &&
    echo --layout >"$TMP/expect" &&
    test_cmp "$TMP/expect" "$TMP/c"
'

test_expect_success 'bash: --log-format offers text and json' '
    complete_bash 0 logpipe-send --log-format "" | sort >"$TMP/c" &&
    printf "json\ntext\n" >"$TMP/expect" &&
    test_cmp "$TMP/expect" "$TMP/c"
'

test_expect_success 'bash: logpipe-dlq completes its commands, then no more' '
    complete_bash 0 logpipe-dlq r >"$TMP/c" &&
    printf "retry\n" >"$TMP/expect" &&
    test_cmp "$TMP/expect" "$TMP/c" &&
    complete_bash 0 logpipe-dlq -v "" | sort >"$TMP/c" &&
    printf "export\nlist\npurge\nretry\nshow\nstats\n" >"$TMP/expect" &&
    test_cmp "$TMP/expect" "$TMP/c" &&
    complete_bash 0 logpipe-dlq retry "" >"$TMP/c" &&
    ! grep -q . "$TMP/c"
'

test_expect_success 'bash: --metrics takes a file name' '
    touch "$TMP/m.prom" &&
    complete_bash 0 logpipe-stat --metrics "$TMP/m." >"$TMP/c" &&
    grep_q "m.prom" "$TMP/c"
'

test_expect_success 'bash: sourced as one tool, it completes the others' '
    mkdir -p "$TMP/bc" &&
    ln -sf "$BASHCOMP" "$TMP/bc/logpipe-send" &&
    bash -c ". \"$TMP/bc/logpipe-send\" && complete -p $tools" >"$TMP/c" &&
    test "$(wc -l <"$TMP/c")" -eq "$(echo $tools | wc -w)"
'

test_done
