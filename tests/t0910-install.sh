#!/bin/sh
# t0910-install.sh -- make install puts everything in its conventional place
. "$(dirname "$0")/lib.sh"

test_expect_success 'make install PREFIX=/usr DESTDIR=...' '
    make -s -C "$TOP" install-files PREFIX=/usr DESTDIR="$TMP/root" >out 2>&1 &&
    for t in "$TOP"/cmd/logpipe-*.c; do
        t=$(basename "$t" .c)
        test -x root/usr/bin/$t &&
        test -f root/usr/share/man/man1/$t.1 &&
        test -L root/usr/share/bash-completion/completions/$t ||
        { echo "missing pieces of $t"; exit 1; }
    done &&
    test -f root/usr/share/man/man7/logpipe.7 &&
    test -f root/usr/share/bash-completion/completions/logpipe &&
    test -f root/usr/share/zsh/site-functions/_logpipe &&
    test -f root/usr/share/doc/logpipe/examples/logpipe-drain.service &&
    test -f root/usr/share/doc/logpipe/examples/users.acl &&
    grep -q "^ExecStart=/usr/bin/logpipe-drain " root/usr/share/doc/logpipe/examples/logpipe-drain.service &&
    ! grep -q /usr/local root/usr/share/doc/logpipe/examples/*.service &&
    root/usr/bin/logpipe-send --version | grep -q "^logpipe-send "
'

test_expect_success 'make uninstall removes it again' '
    make -s -C "$TOP" uninstall PREFIX=/usr DESTDIR="$TMP/root" >out 2>&1 &&
    test -z "$(find root -type f -o -type l)"
'

test_done
