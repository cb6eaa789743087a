#!/bin/sh
# t0001-chain-lint.sh -- no test body lets set -e pass over a failure: an
# && list before the end of a body, `! cmd' on its own, an && list in the
# background (tests/chainlint.pl says what it looks for, and why)
. "$(dirname "$0")/lib.sh"

# what the checker must find, and what it must leave alone
cat >bad.sh <<\END
test_expect_success 'an && list before the end' '
    a &&
    b
    c
'
test_expect_success '! alone before the end' '
    ! grep -q x f
    c
'
test_expect_success 'an && list in the background' '
    a && b &
    wait $!
'
test_expect_success 'a loop body ending in an && list' '
    for i in 1 2; do
        a && b
    done
'
test_expect_success 'a { } group ending in an && list, not last' '
    { a && b; }
    c
'
test_expect_success "a check inside a subshell left of &&" "
    ( grep_q x f
      c ) &&
    d
"
if true; then
    test_expect_success 'in a function, in an if' '
        f() {
            a &&
            b
            c
        }
        f
    '
fi
END

cat >good.sh <<\END
test_expect_success 'one chain' '
    a &&
    b
'
test_expect_success 'lines of their own' '
    a
    ! b
'
test_expect_success '|| exit 1, || { ...; exit 1; }, || :' '
    a && b || exit 1
    a && b || { echo no; exit 1; }
    a && b || :
    c
'
test_expect_success 'quotes, here-documents and $(...) are not code' '
    cat >x <<-\EOF &&
	a && b
	c
	EOF
    echo "x &&
    y" &&
    test "$(a && b
    c)" = c &&
    echo '\''a && b'\'' &&
    d
'
test_expect_success 'an if condition, a subshell' '
    if a && b; then c; fi
    ( a && b )
    c
'
test_expect_success 'a background command, a status read' '
    a &
    pid=$!
    { a; echo $? >rc; } &&
    wait $pid
'
END

cat >bad.want <<\END
bad.sh:2: an && list before the end (line 3): set -e ignores a failure before its last command; end it || exit 1, or give its commands lines of their own
bad.sh:7: `! cmd' before the end: set -e ignores it; put it in a chain, or write: if cmd; then exit 1; fi
bad.sh:11: an && list started in the background (line 11): all of it runs in the background, its first commands race with what follows and their failure is lost; give them lines of their own before
bad.sh:16: an && list at the end of a loop's body (line 16): set -e ignores a failure before its last command; end it || exit 1, or give its commands lines of their own
bad.sh:20: an && list at the end of a { } group or branch that is not last (line 20): set -e ignores a failure before its last command; end it || exit 1, or give its commands lines of their own
bad.sh:24: set -e is off here (inside a compound command left of && or ||): a failure of this command is lost; end it || exit 1, or move it out
bad.sh:31: an && list before the end (line 32): set -e ignores a failure before its last command; end it || exit 1, or give its commands lines of their own
END

test_expect_success 'the checker finds each way set -e passes over a failure' '
    expect_exit 1 perl "$TOP/tests/chainlint.pl" bad.sh >out &&
    test_cmp bad.want out
'

test_expect_success 'the checker leaves alone what set -e does see' '
    perl "$TOP/tests/chainlint.pl" good.sh >out &&
    test_cmp /dev/null out
'

test_expect_success 'a file it cannot read as shell: said, exit 2' '
    printf "%s\n" "test_expect_success \"t\" \"" "    ( a" "\"" >broken.sh &&
    expect_exit 2 perl "$TOP/tests/chainlint.pl" broken.sh >out &&
    grep_q "^broken.sh:1: cannot parse the body: " out
'

# each line that starts a test is a body read (this file's own samples
# above are here-documents, not tests: its count is its 4)
test_expect_success 'every body of every test file is read, and passes' '
    # what it finds is shown by test_cmp
    (cd "$TOP/tests" &&
     CHAINLINT_COUNT=1 perl chainlint.pl t[0-9]*.sh) 2>count >out || :
    test_cmp /dev/null out &&
    for f in "$TOP"/tests/t[0-9]*.sh; do
        case $f in
        */t0001-chain-lint.sh) n=4 ;;
        *) n=$(grep -c "^[[:space:]]*test_expect_success " "$f") ;;
        esac
        echo "${f##*/}: $n bodies"
    done >want &&
    test_cmp want count
'

test_done
