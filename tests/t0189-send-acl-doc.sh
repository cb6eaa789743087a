#!/bin/sh
# t0189-send-acl-doc.sh -- review of issue 15's gate (commit 1631928):
# send(1) says twice what a Redis user of logpipe-send needs. CAVEATS has
# the gate's commands (EVAL; TYPE, HSET, RENAME, SET, DEL inside it, on
# the :send-hold keys too); the paragraph "With Redis ACLs, the user of
# logpipe-send needs ..." under the producers' positions still lists the
# rights from before the gate (+multi, +exec, +hget, +hset, +xadd, +hscan,
# +hdel). A user made from it makes the gate's script fail on its first
# command, and the XADDs after it store every batch that send then says
# it did not store (t0182).
#
# Expected: each paragraph that lists the rights lists the gate's.
. "$(dirname "$0")/lib.sh"

MAN=$TOP/man/logpipe-send.1

# paragraph PATTERN: the mdoc paragraph of send(1) starting at the line
# matching PATTERN, up to the next .Pp
paragraph() {
    awk -v pat="$1" '$0 ~ pat { p = 1 } p { print } p && /^\.Pp/ { exit }' "$MAN"
}

test_expect_success 'the ACL paragraph of the producers'"'"' positions names the gate'"'"'s commands' '
    paragraph "^With Redis ACLs, the user of\$" >acl
    test -s acl
    sed -e "s/^/# /" acl
    for c in eval type rename set del; do
        grep -i -q -e "+$c\\b" -e "Li $c\\b" acl || {
            echo "no $c in the paragraph" >&2
            exit 1
        }
    done
'

test_expect_success 'and examples/users.acl gives the send user the same' '
    grep "^user logpipe-send " "$TOP/examples/users.acl" >u
    for c in multi exec eval hget hset hscan hdel xadd type rename set del; do
        grep -q " +$c\\b" u
    done
'

test_done
