#!/usr/bin/perl
# chainlint.pl -- finds checks in test bodies whose failure set -e ignores
#
#   perl tests/chainlint.pl tests/t*.sh
#
# A test_expect_success body runs under set -e, which ignores the failure
# of every command of an && list but its last, of `! cmd`, and of every
# command inside a compound command that is itself such a command. So in
#
#     a &&
#     b
#     c
#
# a failing `a` goes unnoticed: the list `a && b` fails, but set -e does
# not stop for it, and c runs. This reads each body with a small shell
# parser (quotes, $(...), here-documents, if/for/while/case, subshells,
# braces) and prints FILE:LINE: WHAT for:
#
#   - an && list that ends before its sequence does (the body, a
#     subshell, a { } group, a branch of if or case, a function): each
#     such list ends `|| exit 1` (or return, or a { ...; exit 1; } group),
#     or its commands stand on lines of their own;
#   - the same as the last list of a loop's body (a failure in any
#     iteration but the last is lost), or as the last list of a { } group
#     or an if/case branch that is not the last command of its sequence
#     (set -e does not stop for such a compound: only a subshell's status
#     counts);
#   - `! cmd` standing on its own before the end of a sequence;
#   - an && list ending in `&` (a && b &): all of it runs in the
#     background, so `a` races with what comes next and its failure is
#     lost;
#   - a command before the last one inside a compound command that is
#     itself the left side of && or || (`(a; b) && c`, `for ...; done &&`),
#     where set -e is off: only the commands that check something
#     (test, [, grep, grep_q, test_cmp, cmp, diff, jq, expect_exit,
#     wait_for, wait, kill, test_xlen, logpipe-*) and && lists are
#     looked at there; echo, cat, rcli and the like make data.
#
# The conditions of if, while and until are not checked: set -e is off
# there on purpose. Neither are the left sides of pipelines (no pipefail
# in POSIX sh) nor what runs inside $(...). Nor are the helper functions
# a test file defines outside its bodies (called left of &&, they run with
# set -e off: write each as one && chain). Exit status: 0 when nothing
# was found, 1 otherwise, 2 when a file cannot be parsed.
# CHAINLINT_COUNT=1 says on stderr how many bodies each file has, which
# t0001 compares with the lines that start a test, so that a body the
# parser passed over cannot go unchecked.

use strict;
use warnings;

my $found = 0;
my $broken = 0;

# ---- tokenizer -------------------------------------------------------

# tokens: [type, text, line, value]; type is W (word), OP, NL, EOF.
# value is the word with its quotes removed (for test bodies and
# here-document delimiters).
sub tokenize {
    my ($s, $line0) = @_;
    my @t;
    my $line = $line0;
    my $i = 0;
    my $n = length $s;
    my @heredocs;
    while ($i < $n) {
        my $c = substr($s, $i, 1);
        if ($c eq ' ' || $c eq "\t") { $i++; next; }
        if ($c eq '\\' && substr($s, $i + 1, 1) eq "\n") {
            $i += 2; $line++; next;
        }
        if ($c eq '#') {
            $i++ while $i < $n && substr($s, $i, 1) ne "\n";
            next;
        }
        if ($c eq "\n") {
            push @t, ['NL', "\n", $line];
            $i++; $line++;
            # here-documents start on the next line
            for my $h (@heredocs) {
                my ($delim, $strip) = @$h;
                while ($i < $n) {
                    my $e = index($s, "\n", $i);
                    $e = $n if $e < 0;
                    my $l = substr($s, $i, $e - $i);
                    $i = $e + 1; $line++;
                    $l =~ s/^\t+// if $strip;
                    last if $l eq $delim;
                }
            }
            @heredocs = ();
            next;
        }
        my $rest = substr($s, $i, 3);
        if ($rest =~ /^(&&|\|\||;;)/) {
            push @t, ['OP', $1, $line]; $i += 2; next;
        }
        if ($c =~ /[;&|()]/) {
            push @t, ['OP', $c, $line]; $i++; next;
        }
        # a redirection: [n]op target
        if (substr($s, $i) =~ /^(\d*)(<<-|<<|>>|>&|<&|>\||<>|<|>)/) {
            my $op = $2;
            $i += length($1) + length($2);
            $i++ while $i < $n && substr($s, $i, 1) =~ /[ \t]/;
            my ($raw, $val, $nl);
            ($i, $raw, $val, $nl) = scan_word($s, $i);
            $line += $nl;
            if ($op eq '<<' || $op eq '<<-') {
                push @heredocs, [$val, $op eq '<<-'];
            }
            push @t, ['R', "$op$raw", $line];
            next;
        }
        my $l = $line;
        my ($raw, $val, $nl);
        ($i, $raw, $val, $nl) = scan_word($s, $i);
        $line += $nl;
        die "cannot read a word at line $line\n" if $raw eq '';
        push @t, ['W', $raw, $l, $val];
    }
    push @t, ['EOF', '', $line];
    return \@t;
}

# scan_word(s, i): reads one word from i; returns the index after it,
# the raw text, the value without quotes, and the newlines it spans
sub scan_word {
    my ($s, $i) = @_;
    my $n = length $s;
    my $start = $i;
    my $val = '';
    while ($i < $n) {
        my $c = substr($s, $i, 1);
        last if $c =~ /[ \t\n;&|()<>]/;
        if ($c eq "'") {
            my $e = index($s, "'", $i + 1);
            die "unterminated ' quote\n" if $e < 0;
            $val .= substr($s, $i + 1, $e - $i - 1);
            $i = $e + 1;
        } elsif ($c eq '"') {
            $i++;
            while (1) {
                die "unterminated \" quote\n" if $i >= $n;
                my $d = substr($s, $i, 1);
                if ($d eq '"') { $i++; last; }
                if ($d eq '\\') {
                    my $x = substr($s, $i + 1, 1);
                    if ($x eq "\n") { }
                    elsif ($x =~ /[\$`"\\]/) { $val .= $x; }
                    else { $val .= "\\$x"; }
                    $i += 2;
                } elsif ($d eq '$' && substr($s, $i + 1, 1) =~ /[({]/) {
                    my $e = skip_dollar($s, $i);
                    $val .= substr($s, $i, $e - $i);
                    $i = $e;
                } elsif ($d eq '`') {
                    my $e = skip_backquote($s, $i);
                    $val .= substr($s, $i, $e - $i);
                    $i = $e;
                } else {
                    $val .= $d; $i++;
                }
            }
        } elsif ($c eq '\\') {
            my $x = substr($s, $i + 1, 1);
            $val .= $x unless $x eq "\n";
            $i += 2;
        } elsif ($c eq '$' && substr($s, $i + 1, 1) =~ /[({]/) {
            my $e = skip_dollar($s, $i);
            $val .= substr($s, $i, $e - $i);
            $i = $e;
        } elsif ($c eq '`') {
            my $e = skip_backquote($s, $i);
            $val .= substr($s, $i, $e - $i);
            $i = $e;
        } else {
            $val .= $c; $i++;
        }
    }
    my $raw = substr($s, $start, $i - $start);
    my $nl = ($raw =~ tr/\n//);
    return ($i, $raw, $val, $nl);
}

sub skip_backquote {
    my ($s, $i) = @_;
    $i++;
    while ($i < length $s) {
        my $c = substr($s, $i, 1);
        return $i + 1 if $c eq '`';
        $i += $c eq '\\' ? 2 : 1;
    }
    die "unterminated `\n";
}

# skip_dollar(s, i): s[i] is $ followed by ( or {: the index after the
# matching close, with quotes inside honoured
sub skip_dollar {
    my ($s, $i) = @_;
    my $open = substr($s, $i + 1, 1);
    my $close = $open eq '(' ? ')' : '}';
    my $depth = 0;
    $i++;
    while ($i < length $s) {
        my $c = substr($s, $i, 1);
        if ($c eq $open) { $depth++; $i++; }
        elsif ($c eq $close) { $depth--; $i++; return $i if $depth == 0; }
        elsif ($c eq "'" && $open eq '(') {
            my $e = index($s, "'", $i + 1);
            die "unterminated ' quote in \$(...)\n" if $e < 0;
            $i = $e + 1;
        } elsif ($c eq '"') {
            $i++;
            while ($i < length $s) {
                my $d = substr($s, $i, 1);
                if ($d eq '"') { $i++; last; }
                if ($d eq '\\') { $i += 2; next; }
                if ($d eq '$' && substr($s, $i + 1, 1) =~ /[({]/) {
                    $i = skip_dollar($s, $i); next;
                }
                if ($d eq '`') { $i = skip_backquote($s, $i); next; }
                $i++;
            }
        } elsif ($c eq '\\') { $i += 2; }
        elsif ($c eq '`') { $i = skip_backquote($s, $i); }
        elsif ($c eq '$' && substr($s, $i + 1, 1) =~ /[({]/) {
            $i = skip_dollar($s, $i);
        } else { $i++; }
    }
    die "unterminated \$$open\n";
}

# ---- parser ----------------------------------------------------------
#
# sequence: [statement...]; statement (an and-or list):
#   { line, ops => [&&|||...], items => [pipeline...] }
# pipeline: { bang, cmds => [command...] }
# command: { type => simple|subshell|brace|if|loop|case|func, line,
#            words => [...], seqs => [[kind, sequence]...] }

my ($T, $p);

sub peek { return $T->[$p]; }
sub next_tok { return $T->[$p++]; }
sub is_word { my ($t, $w) = @_; return $t->[0] eq 'W' && $t->[1] eq $w; }
sub is_op { my ($t, $o) = @_; return $t->[0] eq 'OP' && $t->[1] eq $o; }

sub skip_nl {
    $p++ while $T->[$p][0] eq 'NL';
}

sub expect_word {
    my ($w) = @_;
    my $t = next_tok();
    die "expected '$w' at line $t->[2], found '$t->[1]'\n"
        unless is_word($t, $w);
}

sub at_end {
    my ($ends) = @_;
    my $t = peek();
    return 1 if $t->[0] eq 'EOF';
    return 1 if $t->[0] eq 'OP' && $ends->{$t->[1]};
    return 1 if $t->[0] eq 'W' && $ends->{$t->[1]};
    return 0;
}

sub parse_sequence {
    my (%ends) = map { $_ => 1 } @_;
    my @seq;
    while (1) {
        while (peek()->[0] eq 'NL' || is_op(peek(), ';')) { $p++; }
        last if at_end(\%ends);
        push @seq, parse_and_or();
        my $t = peek();
        if ($t->[0] eq 'NL' || is_op($t, ';') || is_op($t, '&')) {
            $seq[-1]{bg} = 1 if is_op($t, '&');
            $p++;
            next;
        }
        last;
    }
    return \@seq;
}

sub parse_and_or {
    my $st = { line => peek()->[2], ops => [], items => [parse_pipeline()] };
    while (is_op(peek(), '&&') || is_op(peek(), '||')) {
        push @{$st->{ops}}, next_tok()->[1];
        skip_nl();
        push @{$st->{items}}, parse_pipeline();
    }
    $st->{end_line} = $T->[$p - 1][2];
    return $st;
}

sub parse_pipeline {
    my $pl = { bang => 0, cmds => [] };
    if (is_word(peek(), '!')) { $p++; $pl->{bang} = 1; }
    push @{$pl->{cmds}}, parse_command();
    while (is_op(peek(), '|')) {
        $p++;
        skip_nl();
        push @{$pl->{cmds}}, parse_command();
    }
    return $pl;
}

sub skip_redirs {
    $p++ while peek()->[0] eq 'R';
}

sub parse_command {
    my $t = peek();
    my $line = $t->[2];
    my $c;
    if (is_op($t, '(')) {
        $p++;
        my $s = parse_sequence(')');
        die "expected ')' at line $line\n" unless is_op(next_tok(), ')');
        $c = { type => 'subshell', seqs => [['subshell', $s]] };
    } elsif (is_word($t, '{')) {
        $p++;
        my $s = parse_sequence('}');
        expect_word('}');
        $c = { type => 'brace', seqs => [['branch', $s]] };
    } elsif (is_word($t, 'if')) {
        $p++;
        my @seqs;
        push @seqs, ['cond', parse_sequence('then')];
        expect_word('then');
        push @seqs, ['branch', parse_sequence('elif', 'else', 'fi')];
        while (is_word(peek(), 'elif')) {
            $p++;
            push @seqs, ['cond', parse_sequence('then')];
            expect_word('then');
            push @seqs, ['branch', parse_sequence('elif', 'else', 'fi')];
        }
        if (is_word(peek(), 'else')) {
            $p++;
            push @seqs, ['branch', parse_sequence('fi')];
        }
        expect_word('fi');
        $c = { type => 'if', seqs => \@seqs };
    } elsif (is_word($t, 'while') || is_word($t, 'until')) {
        $p++;
        my $cond = parse_sequence('do');
        expect_word('do');
        my $body = parse_sequence('done');
        expect_word('done');
        $c = { type => 'loop', seqs => [['cond', $cond], ['loop', $body]] };
    } elsif (is_word($t, 'for')) {
        $p++;
        next_tok();                     # the name
        if (is_word(peek(), 'in')) {
            $p++;
            $p++ while peek()->[0] eq 'W';
        }
        while (peek()->[0] eq 'NL' || is_op(peek(), ';')) { $p++; }
        expect_word('do');
        my $body = parse_sequence('done');
        expect_word('done');
        $c = { type => 'loop', seqs => [['loop', $body]] };
    } elsif (is_word($t, 'case')) {
        $p++;
        next_tok();
        expect_word('in');
        my @seqs;
        while (1) {
            skip_nl();
            last if is_word(peek(), 'esac');
            $p++ if is_op(peek(), '(');
            while (!is_op(peek(), ')')) {
                die "bad case pattern at line $line\n" if peek()->[0] eq 'EOF';
                $p++;
            }
            $p++;
            push @seqs, ['branch', parse_sequence(';;', 'esac')];
            $p++ if is_op(peek(), ';;');
        }
        expect_word('esac');
        $c = { type => 'case', seqs => \@seqs };
    } else {
        my @words;
        while (peek()->[0] eq 'W' || peek()->[0] eq 'R') {
            my $w = next_tok();
            push @words, $w if $w->[0] eq 'W';
        }
        if (@words == 1 && is_op(peek(), '(') && is_op($T->[$p + 1], ')')) {
            $p += 2;
            skip_nl();
            my $body = parse_command();
            $c = { type => 'func', seqs => [['func', $body->{seqs}[0][1]]] };
        } else {
            die "expected a command at line $line, found '$t->[1]'\n"
                unless @words;
            $c = { type => 'simple', words => \@words };
        }
    }
    skip_redirs();
    $c->{line} = $line;
    return $c;
}

sub parse {
    my ($text, $line0) = @_;
    $T = tokenize($text, $line0);
    $p = 0;
    my $s = parse_sequence();
    die "unexpected '$T->[$p][1]' at line $T->[$p][2]\n"
        unless $T->[$p][0] eq 'EOF';
    return $s;
}

# ---- the checks ------------------------------------------------------

my $file;

sub report {
    my ($line, $msg) = @_;
    print "$file:$line: $msg\n";
    $found++;
}

# a list that stops the body itself when it fails: `... || exit N`,
# `|| return N`, `|| { ...; exit N; }`
sub ends_in_exit {
    my ($st) = @_;
    return 0 unless @{$st->{ops}} && $st->{ops}[-1] eq '||';
    my $last = $st->{items}[-1]{cmds}[-1];
    return has_exit($last);
}

sub has_exit {
    my ($c) = @_;
    if ($c->{type} eq 'simple') {
        my $w = $c->{words}[0][3];
        return $w eq 'exit' || $w eq 'return' || $w eq 'false';
    }
    if ($c->{type} eq 'brace') {
        my $s = $c->{seqs}[0][1];
        return @$s && has_exit($s->[-1]{items}[-1]{cmds}[-1]);
    }
    return 0;
}

# commands harmless before the end of a sequence where set -e is off
sub harmless {
    my ($st, $next) = @_;
    my $ops = $st->{ops};
    # started in the background, `|| exit 1`, `|| :`, `|| rc=$?`: its
    # status is dealt with, or not wanted
    return 1 if $st->{bg} || (@$ops && $ops->[-1] eq '||');
    # its status read by the next command: cmd; echo $? >rc
    return 1 if $next && reads_status($next);
    return 0 if @$ops;
    my $pl = $st->{items}[0];
    # a pipeline's status is its last command's
    my $c = $pl->{cmds}[-1];
    return 0 if $pl->{bang};
    # a compound command: what is inside is checked on its own
    return 1 unless $c->{type} eq 'simple';
    # what checks something; the rest (assignments, echo, cat, rcli,
    # sed ...) makes data that a check after it looks at
    return 0 if $c->{words}[0][3] =~ /^(test|\[|grep|grep_q|test_cmp|cmp|
        diff|jq|expect_exit|wait_for|wait|kill|test_xlen|logpipe-.*)$/x;
    return 1;
}

sub reads_status {
    my ($st) = @_;
    my $c = $st->{items}[0]{cmds}[0];
    return 0 unless $c->{type} eq 'simple';
    return scalar grep { $_->[1] =~ /\$\?/ } @{$c->{words}};
}

# check_seq(kind, seq, tail_lost, ignored)
#   tail_lost: a failure of the last list is lost too (loop bodies, and
#              { } groups or branches not last in their own sequence)
#   ignored:   set -e is off here (inside the left side of && or ||)
sub check_seq {
    my ($kind, $seq, $tail_lost, $ignored) = @_;
    return if $kind eq 'cond';
    $tail_lost = 1 if $kind eq 'loop';
    for my $k (0 .. $#$seq) {
        my $st = $seq->[$k];
        my $last = $k == $#$seq && !$tail_lost;
        if ($st->{bg} && grep { $_ eq '&&' } @{$st->{ops}}) {
            report($st->{line}, "an && list started in the background (line $st->{end_line}): all of it runs in the background, its first commands race with what follows and their failure is lost; give them lines of their own before");
        } elsif ($ignored) {
            report($st->{line}, "set -e is off here (inside a compound command left of && or ||): a failure of this command is lost; end it || exit 1, or move it out")
                if !$last && !harmless($st, $seq->[$k + 1]);
        } elsif (!$last && !$st->{bg}) {
            my $ops = $st->{ops};
            my $where = $k < $#$seq ? "before the end"
                : $kind eq 'loop' ? "at the end of a loop's body"
                : "at the end of a { } group or branch that is not last";
            if (@$ops && $ops->[-1] eq '&&') {
                report($st->{line}, "an && list $where (line $st->{end_line}): set -e ignores a failure before its last command; end it || exit 1, or give its commands lines of their own");
            } elsif (!@$ops && $st->{items}[0]{bang}) {
                report($st->{line}, "\`! cmd' $where: set -e ignores it; put it in a chain, or write: if cmd; then exit 1; fi");
            }
        }
        # what runs inside: the left side of && and || with set -e off
        my $items = $st->{items};
        for my $j (0 .. $#$items) {
            my $pl = $items->[$j];
            my $left = $j < $#$items;
            my $cmds = $pl->{cmds};
            # a pipeline's left side: its status is not looked at
            my $c = $cmds->[-1];
            my $standalone = !$left && @$items == 1 && @$cmds == 1
                && !$pl->{bang};
            for my $sub (@{$c->{seqs} || []}) {
                my ($skind, $s) = @$sub;
                # a { } group or a branch: its status does not stop the
                # body unless it is the last command (a subshell's does)
                my $lost = $skind eq 'branch' && $standalone && !$last;
                check_seq($skind, $s, $lost,
                          $ignored || $left || $pl->{bang});
            }
        }
    }
}

# ---- the test files --------------------------------------------------

# every simple command test_expect_success TITLE BODY of a sequence,
# nested anywhere
sub find_tests {
    my ($seq, $out) = @_;
    for my $st (@$seq) {
        for my $pl (@{$st->{items}}) {
            for my $c (@{$pl->{cmds}}) {
                if ($c->{type} eq 'simple') {
                    my $w = $c->{words};
                    if ($w->[0][3] eq 'test_expect_success' && @$w >= 3) {
                        push @$out, $w->[2];
                    }
                } else {
                    find_tests($_->[1], $out) for @{$c->{seqs}};
                }
            }
        }
    }
}

for my $f (@ARGV) {
    $file = $f;
    open(my $fh, '<', $f) or die "$f: $!\n";
    my $text = do { local $/; <$fh> };
    close $fh;
    my @bodies;
    my $top = eval { parse($text, 1) };
    if (!$top) {
        print "$f: cannot parse: $@";
        $broken = 1;
        next;
    }
    find_tests($top, \@bodies);
    print STDERR "$f: ", scalar(@bodies), " bodies\n" if $ENV{CHAINLINT_COUNT};
    for my $b (@bodies) {
        my $seq = eval { parse($b->[3], $b->[2]) };
        if (!$seq) {
            print "$f:$b->[2]: cannot parse the body: $@";
            $broken = 1;
            next;
        }
        check_seq('body', $seq, 0, 0);
    }
}
exit($broken ? 2 : $found ? 1 : 0);
