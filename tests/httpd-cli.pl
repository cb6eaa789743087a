#!/usr/bin/perl
# httpd-cli.pl -- hostile and idle HTTP clients for the lp_httpd tests
#
#   httpd-cli.pl slow ADDR MAXSEC      a request trickled a byte every 50 ms
#   httpd-cli.pl chunked ADDR MAXSEC   a chunked POST body that never ends
#   httpd-cli.pl silent ADDR MAXSEC    connects and sends nothing
#       each: exit 0 with "closed after N bytes" once the server closes the
#       connection, 1 when it is still open after MAXSEC seconds
#   httpd-cli.pl headers ADDR N        a GET with N headers: prints the
#       status line's code, or "closed"
#   httpd-cli.pl split ADDR GO         half a POST body, the rest once the
#       file GO exists (GO.half says the half is sent): prints the answer's
#       status and Connection header
#   httpd-cli.pl idle ADDR N READY [post]
#       N keep-alive connections, each answered one GET /healthz (or a
#       POST of 20 events), then held open; writes READY (the count
#       served) when all were, holds until stdin ends
use strict;
use warnings;
use IO::Socket::INET;
use Time::HiRes qw(sleep time);

$SIG{PIPE} = 'IGNORE';
my ($mode, $addr, $arg, $ready) = @ARGV;

sub conn {
    my $s = IO::Socket::INET->new(PeerAddr => $addr, Proto => 'tcp')
        or die "connect $addr: $!\n";
    $s->autoflush(1);
    return $s;
}

# the server closed it: a read that says EOF or an error, without waiting
sub closed {
    my ($s) = @_;
    my $rin = '';
    vec($rin, fileno($s), 1) = 1;
    return 0 unless select(my $rout = $rin, undef, undef, 0) > 0;
    my $n = sysread($s, my $buf, 65536);
    return !defined($n) || $n == 0;
}

sub trickle {
    my ($s, $bytes, $maxsec) = @_;
    my ($sent, $t0) = (0, time);
    while (time - $t0 < $maxsec) {
        if (closed($s)) {
            print "closed after $sent bytes\n";
            exit 0;
        }
        my $b = $bytes->($sent);
        my $w = syswrite($s, $b);
        if (!defined $w) {
            print "closed after $sent bytes\n";
            exit 0;
        }
        $sent += $w;
        sleep 0.05;
    }
    print "still open after $sent bytes\n";
    exit 1;
}

if ($mode eq 'slow') {
    my $s = conn();
    my $req = "POST /v1/events HTTP/1.1\r\nHost: x\r\n" .
        join('', map { "X-Pad-$_: y\r\n" } 1 .. 100000);
    trickle($s, sub { substr($req, $_[0], 1) }, $arg);
} elsif ($mode eq 'chunked') {
    my $s = conn();
    print $s "POST /v1/events HTTP/1.1\r\nHost: x\r\n" .
        "Content-Type: application/x-ndjson\r\n" .
        "Transfer-Encoding: chunked\r\n\r\n";
    my $line = "{\"a\":1}\n" x 4;
    trickle($s, sub { sprintf("%x\r\n%s\r\n", length $line, $line) }, $arg);
} elsif ($mode eq 'silent') {
    my $s = conn();
    trickle($s, sub { '' }, $arg);
} elsif ($mode eq 'headers') {
    my $s = conn();
    my $req = "GET /healthz HTTP/1.1\r\nHost: x\r\n" .
        join('', map { "X-H$_: v\r\n" } 1 .. $arg) . "\r\n";
    syswrite($s, $req);
    my $got = '';
    while (sysread($s, my $buf, 65536)) {
        $got .= $buf;
        last if $got =~ /\r\n\r\n/;
    }
    print $got =~ m{^HTTP/1\.1 (\d+)} ? "$1\n" : "closed\n";
} elsif ($mode eq 'split') {
    # half a body, then GO (file $arg) awaited, then the rest: prints the
    # answer's status and its Connection header
    my $s = conn();
    my $body = "{\"a\":1}\n{\"b\":2}\n";
    print $s "POST /v1/events HTTP/1.1\r\nHost: x\r\n" .
        "Content-Type: application/x-ndjson\r\n" .
        "Content-Length: " . length($body) . "\r\n\r\n" . substr($body, 0, 8);
    open(my $f, '>', "$arg.half") or die "$arg.half: $!\n";
    close $f;
    sleep 0.05 until -e $arg;
    print $s substr($body, 8);
    my $got = '';
    while (sysread($s, my $buf, 65536)) {
        $got .= $buf;
        last if $got =~ /\r\n\r\n.*\}/s;
    }
    my ($st) = $got =~ m{^HTTP/1\.1 (\d+)};
    my ($c) = $got =~ m{\r\nConnection: (\w+)}i;
    print(($st // 'closed') . ' ' . ($c // '-') . "\n");
} elsif ($mode eq 'idle') {
    my @s;
    for my $i (1 .. $arg) {
        my $s = conn();
        if (($ARGV[4] // '') eq 'post') {
            my $b = "{\"i\":$i}\n" x 20;
            print $s "POST /v1/events HTTP/1.1\r\nHost: x\r\n" .
                "Content-Type: application/x-ndjson\r\n" .
                "Content-Length: " . length($b) . "\r\n\r\n$b";
        } else {
            print $s "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
        }
        push @s, $s;
    }
    my $n = 0;
    for my $s (@s) {
        my $got = '';
        while (sysread($s, my $buf, 4096)) {
            $got .= $buf;
            last if $got =~ /\r\n\r\n(ok\n|\{.*\}\n)/s;
        }
        $n++ if $got =~ m{^HTTP/1\.1 200};
    }
    open(my $f, '>', "$ready.tmp") or die "$ready.tmp: $!\n";
    print $f "$n\n";
    close $f;
    rename("$ready.tmp", $ready) or die "$ready: $!\n";
    1 while <STDIN>;
} else {
    die "usage: httpd-cli.pl slow|chunked|silent|headers|idle ADDR ARG\n";
}
