# promcheck.awk -- is this the Prometheus text exposition format?
# Checks every line: HELP/TYPE comments, sample names and labels, values;
# a TYPE before a name's samples; histogram buckets cumulative, with +Inf
# equal to _count. Prints the faults and exits 1 when there are any.
function fail(msg) { print FILENAME ":" FNR ": " msg ": " $0; bad = 1 }
function base(n) { sub(/_(bucket|sum|count)$/, "", n); return n }
/^# HELP / {
    if ($3 !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*$/) fail("bad name in HELP")
    next
}
/^# TYPE / {
    if ($3 !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*$/) fail("bad name in TYPE")
    if ($4 !~ /^(counter|gauge|histogram|summary|untyped)$/) fail("bad type")
    if ($3 in type) fail("second TYPE")
    type[$3] = $4
    next
}
/^#/ { next }
/^$/ { next }
{
    line = $0
    if (!match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*/)) { fail("bad sample name"); next }
    name = substr(line, 1, RLENGTH)
    rest = substr(line, RLENGTH + 1)
    labels = ""
    if (substr(rest, 1, 1) == "{") {
        end = index(rest, "} ")
        if (end == 0) { fail("unterminated labels"); next }
        labels = substr(rest, 2, end - 2)
        rest = substr(rest, end + 1)
        l = labels
        while (l != "") {
            if (!match(l, /^[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*"/)) {
                fail("bad label"); break
            }
            l = substr(l, RLENGTH + 1)
            if (substr(l, 1, 1) == ",") l = substr(l, 2)
            else if (l != "") { fail("bad label separator"); break }
        }
    }
    sub(/^ /, "", rest)
    n = split(rest, v, " ")
    if (n < 1 || n > 2 || v[1] !~ /^([+-]?[0-9.]+([eE][+-]?[0-9]+)?|[+-]Inf|NaN)$/)
        fail("bad value")
    b = base(name)
    if (!(name in type) && !(b in type)) fail("sample before its TYPE")
    if (type[b] == "histogram") {
        key = b "{" labels "}"
        if (name ~ /_bucket$/) {
            nolbl = labels; sub(/,?le="[^"]*"/, "", nolbl)
            key = b "{" nolbl "}"
            if ((key in last) && v[1] + 0 < last[key]) fail("buckets not cumulative")
            last[key] = v[1] + 0
            if (labels ~ /le="\+Inf"/) inf[key] = v[1] + 0
        } else if (name ~ /_count$/) {
            if (!(key in inf)) fail("no +Inf bucket before _count")
            else if (inf[key] != v[1] + 0) fail("+Inf bucket differs from _count")
        }
    }
}
END { exit bad }
