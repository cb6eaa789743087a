# logpipe -- composable Unix filters that move JSON log events through
# Redis Streams. Plain make; see README.md.

VERSION = 0.1.0
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions
EXAMPLEDIR ?= $(PREFIX)/share/doc/logpipe/examples
DESTDIR ?=

CC ?= cc
PKG_CONFIG ?= pkg-config
OPT ?= -O2 -g
# Diagnostics are snprintf'd into fixed buffers on purpose: a cut message
# is better than an allocation, so -Wformat-truncation is noise here.
WARN = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
       -Wformat=2 -Wno-format-truncation \
       -Werror=implicit-function-declaration -Werror=implicit-int
CFLAGS ?= $(OPT)
LP_CFLAGS = -std=c11 -D_GNU_SOURCE -DLP_VERSION='"$(VERSION)"' $(WARN) \
            -Ilib $(shell $(PKG_CONFIG) --cflags hiredis zlib libsystemd openssl \
                                  libmicrohttpd 2>/dev/null)
LP_LIBS = -Wl,--as-needed \
          $(shell $(PKG_CONFIG) --libs hiredis zlib libsystemd libmicrohttpd openssl \
                  2>/dev/null || \
                  echo -lhiredis -lz -lsystemd -lmicrohttpd -lssl -lcrypto) \
          -ljq -lm -lpthread

# SAN=1: AddressSanitizer and UndefinedBehaviorSanitizer
ifeq ($(SAN),1)
OPT = -O1 -g -fno-omit-frame-pointer
LP_CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

TOOLS = $(patsubst cmd/%.c,cmd/%,$(wildcard cmd/logpipe-*.c))
LIB_SRC = $(wildcard lib/lp_*.c)
LIB_OBJ = $(LIB_SRC:.c=.o)
LIB_HDR = $(wildcard lib/lp_*.h)
# what the tools share that prints and exits (not the library's business)
TOOL_SRC = $(wildcard cmd/tool_*.c)
TOOL_OBJ = $(TOOL_SRC:.c=.o)
TOOL_HDR = $(wildcard cmd/tool_*.h)
UNIT = $(patsubst tests/%.c,tests/%,$(wildcard tests/unit-*.c))
BENCH = $(patsubst tests/%.c,tests/%,$(wildcard tests/bench-*.c))
POWERLOSS = tests/powerloss.so tests/powerloss-cut tests/powerloss-writer
# the tests' own clients of lib/ (commands through lp_cluster, as
# redis-cli; the names of a stream's shards)
TESTPROGS = tests/cluster-cli tests/shard-names
MAN1 = $(wildcard man/logpipe-*.1)
MAN7 = man/logpipe.7

all: $(TOOLS) $(UNIT) $(BENCH) $(POWERLOSS) $(TESTPROGS)

# a change of flags (SAN=1, CFLAGS=...) rebuilds everything
FLAGS = $(CC) $(CPPFLAGS) $(LP_CFLAGS) $(CFLAGS) $(LDFLAGS) $(LP_LIBS)
lib/.flags: FORCE
	@echo '$(FLAGS)' | cmp -s - $@ || echo '$(FLAGS)' >$@

lib/%.o: lib/%.c $(LIB_HDR) lib/.flags
	$(CC) $(CPPFLAGS) $(LP_CFLAGS) $(CFLAGS) -c -o $@ $<

lib/liblogpipe.a: $(LIB_OBJ)
	$(AR) rcs $@ $(LIB_OBJ)

cmd/tool_%.o: cmd/tool_%.c $(TOOL_HDR) $(LIB_HDR) lib/.flags
	$(CC) $(CPPFLAGS) $(LP_CFLAGS) $(CFLAGS) -c -o $@ $<

cmd/logpipe-%: cmd/logpipe-%.c $(TOOL_OBJ) lib/liblogpipe.a $(TOOL_HDR) \
               $(LIB_HDR) lib/.flags
	$(CC) $(CPPFLAGS) $(LP_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< \
	    $(TOOL_OBJ) lib/liblogpipe.a $(LP_LIBS)

# a unit test links the tools' objects it lists below
tests/unit-%: tests/unit-%.c tests/tap.h lib/liblogpipe.a $(LIB_HDR) lib/.flags
	$(CC) $(CPPFLAGS) $(LP_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< \
	    $(filter cmd/%.o,$^) lib/liblogpipe.a $(LP_LIBS)

tests/unit-opt: cmd/tool_opt.o $(TOOL_HDR)

tests/bench-%: tests/bench-%.c lib/liblogpipe.a $(LIB_HDR) lib/.flags
	$(CC) $(CPPFLAGS) $(LP_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< \
	    lib/liblogpipe.a $(LP_LIBS)

$(TESTPROGS): %: %.c lib/liblogpipe.a $(LIB_HDR) lib/.flags
	$(CC) $(CPPFLAGS) $(LP_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< \
	    lib/liblogpipe.a $(LP_LIBS)

# the power-loss simulator of t0190 and s0190: an LD_PRELOAD shim and its
# helpers, never sanitized (the shim is loaded into other programs) and
# linked with nothing of ours
PL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS)
tests/powerloss.so: tests/powerloss.c
	$(CC) $(PL_CFLAGS) -fPIC -shared -o $@ $< -ldl -lpthread

tests/powerloss-%: tests/powerloss-%.c
	$(CC) $(PL_CFLAGS) -o $@ $< -lpthread

# Debian packages the build, the tests and the demo need.
DEPS = build-essential pkg-config libhiredis-dev libjq-dev zlib1g-dev \
       libsystemd-dev libmicrohttpd-dev libssl-dev openssl \
       redis-server redis-tools jq mandoc perl gzip procps zsh \
       bash-completion systemd strace time valgrind postgresql sqlite3 \
       systemd-journal-remote

# and for make fuzz: clang with libFuzzer and the sanitizers' runtimes
FUZZ_DEPS = clang libclang-rt-14-dev

deps:
	@sh tests/deps.sh $(DEPS)

fuzz-deps: deps
	@sh tests/deps.sh $(FUZZ_DEPS)

# prove starts the files in the order given, CHECK_JOBS at once: the
# slowest first (over 6 s each in a -j2 run on 2 cores, slowest first, 63
# files, 80% of the time), then the others in name order, so that no slow
# file starts last and runs alone at the end. A file missing from the list
# runs all the same (in name order); one slow now belongs here.
CHECK_JOBS = 2
CHECK_FIRST = \
    tests/t0396-shards-follow-count-change.sh tests/t0333-http-aside.sh \
    tests/t0171-send-follow-kill.sh tests/t0220-drain-faults.sh \
    tests/t0382-send-shards-follow-kill.sh tests/t0326-http-review.sh \
    tests/t0349-cluster-reshard-failover.sh tests/t0921-units.sh \
    tests/t0385-cluster-send-shards-wal.sh tests/t0019-fuzz-seeds.sh \
    tests/t0328-http-never-waits.sh tests/t0700-drain-exec.sh \
    tests/t0183-send-field-pruned-lost-reply.sh tests/t0180-send-journal.sh \
    tests/t0231-drain-twins.sh tests/t0345-cluster-failover.sh \
    tests/t0172-send-follow-oom.sh tests/t0110-send-redis.sh \
    tests/t0332-http-parked.sh tests/t0830-doc-pipelines.sh \
    tests/t0340-redis-tls.sh tests/t0176-send-follow-many-lost.sh \
    tests/t0120-send-wal.sh tests/t0341-send-replicas.sh \
    tests/t0384-send-shards-journal.sh tests/t0378-send-shards-follow-key-wal.sh \
    tests/t0373-send-shards-wal-redis-away.sh tests/t0034-follow.sh \
    tests/t0355-send-shards-wal.sh tests/t0170-send-follow.sh \
    tests/t0387-send-shards-follow-key-kill.sh tests/t0250-drain-journal.sh \
    tests/t0160-send-idem-kill.sh tests/t0040-aside.sh \
    tests/t0325-http-valgrind.sh tests/t0394-dlq-retry-shards-moving-cluster.sh \
    tests/t0210-drain-recovery.sh tests/t0179-send-follow-forget-pending.sh \
    tests/t0230-drain-ours.sh tests/t0379-shards-wal-away-count-change.sh \
    tests/t0140-send-wal-partial.sh tests/t0162-send-idem-reply.sh \
    tests/t0610-hostile.sh tests/t0364-cluster-shards.sh \
    tests/t0130-send-rate.sh tests/t0161-send-idem-oom.sh \
    tests/t0399-shards-wal-reused-other-stream.sh tests/t0386-send-shards-follow-key.sh \
    tests/t0388-shards-count-change-history-cluster.sh tests/t0354-cluster-send-shards.sh \
    tests/t0318-httpd-valgrind.sh tests/t0381-send-shards-follow.sh \
    tests/t0353-send-shards-once.sh tests/t0352-send-shards.sh \
    tests/t0520-metrics.sh tests/t0348-cluster-http.sh \
    tests/t0347-cluster-tools.sh tests/t0383-cluster-send-shards-follow.sh \
    tests/t0256-drain-max-open.sh tests/t0342-cluster.sh \
    tests/t0393-dlq-shards-moving-cluster.sh tests/t0392-replay-shards-moving-cluster.sh \
    tests/t0346-cluster-tls.sh
CHECK_TESTS = $(wildcard $(CHECK_FIRST)) \
    $(filter-out $(CHECK_FIRST),$(sort $(wildcard tests/t[0-9]*.sh)))

check: deps all
	@prove -j$(CHECK_JOBS) -e '' $(CHECK_TESTS)

# the unit tests under valgrind, and tests/cluster-cli over real clusters
# (every path of lp_cluster: map loads and reloads, MOVED, ASK, TRYAGAIN
# waits, a node gone and its replica promoted, TLS): no invalid access, no
# leak
VALGRIND = valgrind -q --leak-check=full --show-leak-kinds=definite,indirect \
           --errors-for-leak-kinds=definite,indirect --error-exitcode=99
valgrind: deps all
	@LP_VALGRIND="$(VALGRIND)" prove -j2 -e '' tests/t00[0-9]*.sh \
	    tests/t0343-cluster-unit.sh tests/t0342-cluster.sh \
	    tests/t0345-cluster-failover.sh tests/t0346-cluster-tls.sh

# long fault-injection and soak runs, not part of check
stress: deps all
	@LP_STRESS=1 prove -e '' tests/t[0-9]*.sh tests/s[0-9]*.sh

# the libFuzzer harnesses of tests/fuzz/, FUZZ_SECONDS each, one at a time;
# FUZZ=NAME for one (json layout wal reply gz httpbody otlp httpd
# cluster). Not part of check, which only runs them over their seeds
# (t0019).
FUZZ ?=
FUZZ_SECONDS ?= 60
fuzz: fuzz-deps
	@FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz.sh $(FUZZ)

# what CI runs: every harness over its seeds, then a fixed-seed run of a
# fixed number of inputs (FUZZ_SEED, FUZZ_RUNS_SCALE): the same commit
# gives the same result, so CI turns red only on what the commit did
fuzz-ci: fuzz-deps
	@sh tests/fuzz.sh --ci $(FUZZ)

demo: deps
	@$(MAKE) -s all
	@sh examples/demo.sh

# the incumbent the README compares with: rsyslog's omhiredis
BENCH_DEPS = rsyslog rsyslog-hiredis nghttp2-client
bench: deps all
	@sh tests/deps.sh $(BENCH_DEPS)
	@sh tests/bench.sh

install: all
	@$(MAKE) -s install-files

# copies only: the tests use it, so a test run never rebuilds under itself
install-files:
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
	    $(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(BASHCOMPDIR) \
	    $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(EXAMPLEDIR)
	install -m 755 $(TOOLS) $(DESTDIR)$(BINDIR)/
	install -m 644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/
	install -m 644 $(MAN7) $(DESTDIR)$(MANDIR)/man7/
	install -m 644 completions/logpipe.bash \
	    $(DESTDIR)$(BASHCOMPDIR)/logpipe
	for t in $(notdir $(TOOLS)); do \
	    ln -sf logpipe $(DESTDIR)$(BASHCOMPDIR)/$$t; done
	install -m 644 completions/_logpipe $(DESTDIR)$(ZSHCOMPDIR)/_logpipe
	for f in examples/*; do \
	    sed -e 's|/usr/local/bin/|$(BINDIR)/|g' \
	        -e 's|/usr/local/share/doc/logpipe|$(PREFIX)/share/doc/logpipe|g' \
	        "$$f" >$(DESTDIR)$(EXAMPLEDIR)/$${f#examples/} && \
	    chmod 644 $(DESTDIR)$(EXAMPLEDIR)/$${f#examples/} || exit 1; done

uninstall:
	for t in $(notdir $(TOOLS)); do \
	    rm -f $(DESTDIR)$(BINDIR)/$$t $(DESTDIR)$(MANDIR)/man1/$$t.1 \
	        $(DESTDIR)$(BASHCOMPDIR)/$$t; done
	rm -f $(DESTDIR)$(MANDIR)/man7/logpipe.7 \
	    $(DESTDIR)$(BASHCOMPDIR)/logpipe $(DESTDIR)$(ZSHCOMPDIR)/_logpipe
	for f in $(notdir $(wildcard examples/*)); do \
	    rm -f $(DESTDIR)$(EXAMPLEDIR)/$$f; done
	-rmdir $(DESTDIR)$(EXAMPLEDIR) $(dir $(DESTDIR)$(EXAMPLEDIR)) 2>/dev/null

clean:
	rm -f lib/*.o lib/liblogpipe.a lib/.flags cmd/*.o $(TOOLS) $(UNIT) \
	    $(BENCH) $(POWERLOSS) $(TESTPROGS)

.PHONY: all deps fuzz-deps check valgrind stress fuzz fuzz-ci demo bench install \
        install-files uninstall clean FORCE
.SUFFIXES:
