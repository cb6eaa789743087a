#!/bin/sh
# t0311-send-judged.sh -- what send does with an event once lp_event has
# judged it: --rate over the elements of an array line (by number) and over
# a line with blanks around it (--rejects and the DLQ get the line as
# read), a --rate-key member that is also a --require member; the words
# and bytes of each, the same before and after send moved onto lp_event
. "$(dirname "$0")/lib.sh"
start_redis

# stream_data [STREAM]: the data field of each entry, one a line
stream_data() {
    rcli --raw XRANGE "${1:-logs:stream}" - + |
        awk 'f { print; f = 0; next } $0 == "data" { f = 1 }'
}

# dlq_recs: "data|error|detail" of each dead letter
dlq_recs() {
    rcli --raw XRANGE logs:dlq - + |
        awk 'f == 1 { d = $0 } f == 2 { e = $0 }
             f == 3 { print d "|" e "|" $0 }
             { f = 0 }
             $0 == "data" { f = 1 } $0 == "error" { f = 2 }
             $0 == "detail" { f = 3 }'
}

# messages: send's "line N: ..." words, an invalid JSON's details cut
messages() {
    sed -n 's/^logpipe-send: \(line [0-9]*: .*\)/\1/p' "$1" |
        sed 's/\(invalid JSON\): .*/\1/'
}

# a burst of 2: the first line's event and the array's first element pass
printf '  {"app":"a","n":1}  \n' >in.ndjson
printf '[{"app":"a","n":2},{"app":"a","n":3},7,{"app":"a","n":4}]\n' \
    >>in.ndjson
printf '\t{"app":"a","n":5} \n{"app":\n' >>in.ndjson

printf '%s\n' '{"app":"a","n":1}' '{"app":"a","n":2}' >stored.want
printf '%s\n' 'line 2: element 2: over --rate' \
    'line 2: element 3: not a JSON object' 'line 2: element 4: over --rate' \
    'line 3: over --rate' 'line 4: invalid JSON' >msgs.want
printf '{"app":"a","n":3}\n7\n{"app":"a","n":4}\n\t{"app":"a","n":5} \n' \
    >rejects.want
printf '{"app":\n' >>rejects.want
{
    printf '%s\n' '{"app":"a","n":3}|rate-limited|element 2: over --rate' \
        '7|not-object|element 3: not a JSON object' \
        '{"app":"a","n":4}|rate-limited|element 4: over --rate'
    printf '\t{"app":"a","n":5} |rate-limited|over --rate\n'
} >dlq.want
grep -v not-object dlq.want >dlq-rate.want

test_expect_success '--on-limit reject: elements over --rate by number, a padded line as read' '
    expect_exit 65 logpipe-send -s rej --rate 1/h --burst 2 \
        --on-limit reject --rejects rej.out <in.ndjson 2>err &&
    stream_data rej >stored &&
    test_cmp stored.want stored &&
    messages err >msgs &&
    test_cmp msgs.want msgs &&
    test_cmp rejects.want rej.out &&
    grep_q "^logpipe-send: 2 invalid events in 4 lines" err &&
    grep_q "^logpipe-send: 3 events over --rate rejected" err
'

test_expect_success '--on-limit dlq: those over --rate as dead letters, the same bytes and words' '
    expect_exit 65 logpipe-send -s dl --rate 1/h --burst 2 \
        --on-limit dlq <in.ndjson 2>err &&
    stream_data dl >stored &&
    test_cmp stored.want stored &&
    messages err >msgs &&
    test_cmp msgs.want msgs &&
    dlq_recs >dlq &&
    test_cmp dlq-rate.want dlq
'

test_expect_success '--rejects-to-dlq beside --on-limit dlq: every rejected event, in order' '
    rcli DEL logs:dlq >/dev/null &&
    expect_exit 65 logpipe-send -s dl2 --rate 1/h --burst 2 \
        --on-limit dlq --rejects-to-dlq <in.ndjson 2>err &&
    stream_data dl2 >stored &&
    test_cmp stored.want stored &&
    dlq_recs >dlq &&
    test "$(sed -n 5p dlq | cut -d"|" -f1,2)" = "{\"app\":|invalid-json" &&
    sed 5d dlq >dlq4 &&
    test_cmp dlq.want dlq4
'

test_expect_success '--rate-key .app and --require app: one member, both uses' '
    printf "%s\n" "{\"app\":\"a\",\"n\":1}" "{\"app\":\"b\",\"n\":2}" \
        "{\"app\":\"a\",\"n\":3}" "{\"n\":4}" "{\"app\":\"b\",\"n\":5}" |
        expect_exit 65 logpipe-send -s keyed --require app --rate 1/h \
        --burst 1 --rate-key .app --on-limit reject 2>err &&
    printf "%s\n" "{\"app\":\"a\",\"n\":1}" "{\"app\":\"b\",\"n\":2}" \
        >want &&
    stream_data keyed >stored &&
    test_cmp want stored &&
    printf "%s\n" "line 3: over --rate for key \"a\"" \
        "line 4: required member \"app\" is missing" \
        "line 5: over --rate for key \"b\"" >want &&
    messages err >msgs &&
    test_cmp want msgs
'

test_done
