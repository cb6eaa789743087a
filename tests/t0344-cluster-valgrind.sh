#!/bin/sh
# t0344-cluster-valgrind.sh -- t0342, t0345 and t0346 again with
# tests/cluster-cli under valgrind's memcheck: every path of lp_cluster a
# real cluster takes there (map loads and reloads, MOVED, ASK, TRYAGAIN
# waits, batches, a refused database, standalone, maps without hosts, a
# node gone and its replica promoted, TLS) with no invalid access and no
# leak.
. "$(dirname "$0")/lib.sh"

if ! command -v valgrind >/dev/null 2>&1 || [ -n "${LP_VALGRIND:-}" ] ||
   [ "$SAN" = 1 ]; then
    test_skip 't0342 under valgrind' 'no valgrind, or an ASan build, or under make valgrind already'
    test_skip 't0345 under valgrind' 'no valgrind, or an ASan build, or under make valgrind already'
    test_skip 't0346 under valgrind' 'no valgrind, or an ASan build, or under make valgrind already'
    test_done
fi

# under T N: test file T, run with the cli under valgrind, passes its N
# tests and valgrind says nothing
under() {
    LP_VALGRIND="valgrind -q --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --error-exitcode=99" \
        sh "$TOP/tests/$1" >tap 2>&1 || :
    sed -e "s/^/# /" tap
    grep_q "^1\.\.$2\$" tap &&
    test "$(grep -c "^ok " tap)" = "$2" &&
    ! grep -q "==[0-9]*==" tap
}

test_expect_success 't0342 under valgrind: no error, no leak' '
    under t0342-cluster.sh 10
'

test_expect_success 't0345 under valgrind: no error, no leak' '
    under t0345-cluster-failover.sh 2
'

test_expect_success 't0346 under valgrind: no error, no leak' '
    under t0346-cluster-tls.sh 3
'

test_done
