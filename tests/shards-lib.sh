# shards-lib.sh -- sharded streams made by hand, for the tests of the
# tools that read them (stat, dlq, replay): the names of
# tests/shard-names, entries written with redis-cli, as logpipe-send
# --shards and a sharded drain would leave them.
#
#   . "$TOP/tests/shards-lib.sh"
#   CLI="rcli"          # or "ccli $PORT -c" on a cluster
#   shards_fill STREAM N K   # shard i gets K*(i+1) entries
#
# Each entry's data is {"seq":S,"shard":I,"timestamp":T}: S counts 1.. over
# all shards (shard 0 first), T one second apart from 2026-01-01T00:00:00Z
# in each shard (shards read one after the other are not in time order). shard_name STREAM N I, dlq_name BASE N I:
# shard I's stream and DLQ names.

shard_name() {
    "$TOP/tests/shard-names" "$1" "$2" | sed -n "$(($3 + 1))p"
}

# the names are those of shards, so their DLQs are too: the same tags
dlq_name() {
    shard_name "$1" "$2" "$3"
}

# shards_fill STREAM N K: the entries, by one redis-cli reading commands
shards_fill() {
    awk -v k="$3" -v names="$("$TOP/tests/shard-names" "$1" "$2" | tr '\n' ' ')" '
    BEGIN {
        n = split(names, nm, " ")
        s = 0
        for (i = 0; i < n; i++)
            for (j = 0; j < k * (i + 1); j++) {
                s++
                printf "XADD %s * data '"'"'{\"seq\":%d,\"shard\":%d,\"timestamp\":\"2026-01-01T00:%02d:%02dZ\"}'"'"'\n",
                    nm[i + 1], s, i, int(j / 60) % 60, j % 60
            }
    }' | $CLI >/dev/null
}

# shards_spread FIRST LAST NSVC [PAD]: XADD commands (on stdout) for events
# FIRST..LAST, event s on the shard named on line (s-1) % K + 1 of the
# file "names" (K lines), {"service":"s<s % NSVC>","seq":s} (and "pad", PAD
# x's, when PAD is given): the drain tests' round-robin fill
shards_spread() {
    awk -v first="$1" -v last="$2" -v nsvc="$3" -v pad="${4-}" '
    BEGIN {
        while ((getline l < "names") > 0) name[k++] = l
        p = ""
        for (j = 0; j < pad + 0; j++) p = p "x"
        for (s = first; s <= last; s++)
            printf "XADD %s * data '"'"'{\"service\":\"s%d\",\"seq\":%d%s}'"'"'\n",
                name[(s - 1) % k], s % nsvc, s,
                pad == "" ? "" : ",\"pad\":\"" p "\""
    }'
}

# tree_lines DIR...: every line of the .jsonl files under the DIRs
tree_lines() {
    find "$@" -name "*.jsonl" -type f -exec cat {} +
}
