#!/bin/sh
# t0920-docs-agree.sh -- what the pages and the README say about the tools
# as a whole agrees with the tools (issue 12 item 9): the version, which
# tools take which common option and variable, the dlq commands
. "$(dirname "$0")/lib.sh"

TOOLS="agg dlq drain http replay rotate send stat"
VERSION=$(sed -n 's/^VERSION *= *//p' "$TOP/Makefile")

# has TOOL OPTION: the tool's --help lists the long option
has() {
    "logpipe-$1" --help | grep -q -e "--$2\( \|$\)"
}

# takers OPTION [EXCEPT...]: the tools taking --OPTION, minus EXCEPT,
# as "a, b, c" in the order of $TOOLS
takers() {
    opt=$1; shift
    for t in $TOOLS; do
        case " $* " in *" $t "*) continue ;; esac
        has "$t" "$opt" && printf '%s\n' "$t"
    done | paste -s -d, - | sed 's/,/, /g'
}

# env_tools VAR: the tools logpipe(7) ENVIRONMENT names for VAR, sorted
# as $TOOLS is, "a, b, c"
env_tools() {
    awk -v var="$1" '
    /^\.Sh / { in_env = ($2 == "ENVIRONMENT") }
    in_env && /^\.It Ev / { on = ($3 == var); next }
    in_env && on && /^\.(It|El)/ { on = 0 }
    in_env && on { text = text " " $0 }
    END {
        if (!match(text, /\([a-z, ]*\)\.?$/)) exit 1
        print substr(text, RSTART + 1, RLENGTH - 1)
    }' "$TOP/man/logpipe.7" | sed 's/)\.\{0,1\}$//' | tr -d ' ' | tr , '\n' |
    awk -v order="$TOOLS" '
    BEGIN { n = split(order, o, " "); for (i = 1; i <= n; i++) rank[o[i]] = i }
    { print rank[$0] " " $0 }' | sort -n | cut -d' ' -f2 |
    paste -s -d, - | sed 's/,/, /g'
}

test_expect_success "every page says .Os logpipe $VERSION (the Makefile's)" '
    test -n "$VERSION" &&
    for p in "$TOP"/man/*.[1-9]; do
        test "$(sed -n "s/^\.Os //p" "$p")" = "logpipe $VERSION" ||
            { echo "$p: $(grep "^\.Os" "$p")"; exit 1; }
        mandoc -Tascii "$p" | tail -n 1 | grep -q "logpipe $VERSION" ||
            { echo "$p: footer $(mandoc -Tascii "$p" | tail -n 1)"; exit 1; }
    done
'

test_expect_success "every tool says it is version $VERSION" '
    for t in $TOOLS; do
        test "$(logpipe-$t --version)" = "logpipe-$t $VERSION" ||
            { echo "logpipe-$t --version: $(logpipe-$t --version)"; exit 1; }
    done
'

test_expect_success 'logpipe(7) ENVIRONMENT names the tools each variable is for' '
    for v in LOGPIPE_REDIS_URL:redis LOGPIPE_STREAM:stream \
             LOGPIPE_DLQ:dlq LOGPIPE_REDIS_PASSWORD:password-file \
             REDISCLI_AUTH:password-file; do
        want=$(takers "${v#*:}") &&
        got=$(env_tools "${v%%:*}") &&
        test "$got" = "$want" ||
            { echo "${v%%:*}: logpipe(7) says ($got), the tools ($want)"; exit 1; }
    done &&
    # stat takes --group and --dir from its command line only
    test "$(env_tools LOGPIPE_GROUP)" = "$(takers group stat)" &&
    test "$(env_tools LOGPIPE_DIR)" = "$(takers dir stat)" &&
    test "$(takers redis)" = "dlq, drain, http, replay, send, stat"
'

test_expect_success 'the README names the tools that do not take -r' '
    without=$(for t in $TOOLS; do has $t redis || echo "logpipe-$t"; done |
              sort | sed "1!s/^/and /" | paste -s -d" " -) &&
    test "$without" = "logpipe-agg and logpipe-rotate" &&
    tr "\n" " " <"$TOP/README.md" | tr -s " " |
        grep -q "Every tool that talks to Redis (all but logpipe-rotate and logpipe-agg) takes \`-r" &&
    ! grep -qi "every tool takes .-r" "$TOP/README.md"
'

test_expect_success 'the README names every logpipe-dlq command as it is' '
    logpipe-dlq --help | sed -n "/^Inspect/,/^\$/p" |
        sed -n "s/^  \([a-z][a-z]*\) .*/\1/p" >cmds &&
    test "$(wc -l <cmds)" -ge 6 &&
    awk "/^- \*\*logpipe-dlq\*\*/ { on = 1; print; next }
         on && (/^\$/ || /^- /) { on = 0 } on" \
        "$TOP/README.md" | tr "\n" " " >bullet &&
    while read -r c; do
        grep -q "\`$c\`" bullet || { echo "README: no \`$c\` in: $(cat bullet)"; exit 1; }
    done <cmds &&
    # and no command that does not exist, such as "counts"
    grep -o "\`[a-z]*\`" bullet | tr -d "\`" | sort -u >named &&
    sort -u cmds | comm -13 - named >extra &&
    test ! -s extra
'

test_done
