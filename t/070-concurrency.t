# Single use under concurrency: many simultaneous uses of one approval
# token, spread over two worker processes, let exactly one request
# through; the record of the use is taken atomically in the shared zone.
#
# Plain Perl (not a data-driven Test::Nginx file): it needs hundreds of
# requests in flight at once.  The listen socket has "reuseport", so the
# kernel spreads the connections over both workers and the race is a
# real cross-process one.
#
# nginx starts on a "warm" state file (CibaTest::warm_state: a zone that
# started an hour ago, without records), so tokens issued now pass at once
# (the restart rule is tested in t/075-reload-restart.t).
use strict;
use warnings;

use lib 't';

use Test::More;

BEGIN {
    plan skip_all => 'hundreds of concurrent requests are meaningless '
                     . 'under valgrind (TEST_NGINX_USE_VALGRIND is set)'
        if $ENV{TEST_NGINX_USE_VALGRIND};
}

use JSON::PP ();
use MIME::Base64 qw(decode_base64url);
use Time::HiRes qw(time);

use CibaNginx;
use CibaTest qw(mint keys_dir warm_state);

my $N = 300;            # concurrent uses of one token
my $ROUNDS = 3;         # with that many different tokens

my $ng = CibaNginx->new(workers => 2);
my $keys = keys_dir();
my $port = $ng->port;
my $state = warm_state(epoch => int(time) - 3600);

my $PATH = '/tools/refund';
my $ARGS = 'order=42&amount=10';
my $BODY = '{"reason":"duplicate charge"}';

$ng->write_config(
    listen => 'reuseport',
    http   => "    ciba_zone ciba:1m state=$state;\n",
    server => <<"_EOC_");
        location = $PATH {
            ciba on;
            ciba_action refund;
            ciba_issuer https://as.example;
            ciba_audience https://tools.example;
            ciba_key_file $keys/ec256.pub kid=ec1;
            proxy_pass http://127.0.0.1:$port/backend;
        }

        location /backend {
            return 200 "upstream ran\\n";
        }
_EOC_

{
    my $off = $ng->log_offset;

    if (!ok($ng->start, 'nginx starts: master and two workers')) {
        diag $ng->error;
        done_testing;
        exit;
    }

    like($ng->log_since($off),
         qr/\[notice\].*ciba: loaded 0 single-use records from "\Q$state\E"/,
         'the warm state is loaded (the zone started an hour ago)');
}

# iat: now (the zone's epoch, from the warm state, is an hour ago)
sub token {
    return mint(path => $PATH, args => $ARGS, body => $BODY,
                claims => { iat => int(time), @_ });
}

sub jti_of {
    my $payload = (split /\./, shift)[1];
    return JSON::PP::decode_json(decode_base64url($payload))->{jti};
}

sub req {
    my $token = shift;
    return { method => 'POST', uri => "$PATH?$ARGS", body => $BODY,
             headers => [ 'Content-Type' => 'application/json',
                          'Approval-Token' => $token ] };
}

sub status_of { return $_[0][0] // 'none' }

sub is_replayed {
    my $r = shift;
    return status_of($r) eq '403'
           && $r->[2] =~ /"error":"approval_replayed"/;
}

sub summary {
    my %n;
    $n{ status_of($_) }++ for @_;
    return join ', ', map { "$_: $n{$_}" } sort keys %n;
}

# decision lines of the error log for one jti
sub decisions {
    my ($log, $jti) = @_;
    return grep { /ciba: decision=\w+ .*\bjti="\Q$jti\E"/ } split /^/, $log;
}

# ---- one token, 300 concurrent uses, three times ----------------------------

for my $round (1 .. $ROUNDS) {
    my $token = token();
    my $jti = jti_of($token);
    my $off = $ng->log_offset;

    my $t0 = time;
    my @res = $ng->parallel([ (req($token)) x $N ]);
    my $took = time - $t0;

    my @passed = grep { status_of($_) eq '200' } @res;
    my @replayed = grep { is_replayed($_) } @res;

    is(scalar @passed, 1,
       "round $round: exactly one of $N concurrent uses passes")
        or diag 'answers: ' . summary(@res) . "\n" . $ng->error;
    is($passed[0] && $passed[0][2], "upstream ran\n",
       "round $round: the one that passed reached the upstream");
    is(scalar @replayed, $N - 1,
       "round $round: the other " . ($N - 1)
       . ' are 403 approval_replayed')
        or diag 'answers: ' . summary(@res);

    my @lines = decisions($ng->log_since($off), $jti);

    is(scalar(grep { /decision=approved reason=token_valid / } @lines), 1,
       "round $round: exactly one decision=approved line for the jti");
    is(scalar(grep { /decision=replayed reason=jti_replayed / } @lines),
       $N - 1, "round $round: " . ($N - 1) . ' decision=replayed lines');

    my %pids = map { /\[\w+\] (\d+)#/ ? ($1 => 1) : () } @lines;
    is(scalar keys %pids, 2,
       "round $round: both workers decided some of the requests");

    # a replay refused at the atomic consumption (after the signature
    # check, so with the approver known) lost the race itself; the others
    # were refused by the cheap lookup before the signature check
    my $raced = grep { /decision=replayed .*approver="alice"/ } @lines;

    note sprintf "round %d: %d requests in %.2f s; decisions per worker: "
                 . "%s; refused at the consumption itself: %d", $round, $N,
                 $took, join(' ', map { my $p = $_;
                                        "$p=" . grep { /\] $p#/ } @lines }
                                  sort keys %pids), $raced;
}

# ---- ten tokens, thirty concurrent uses each, interleaved -------------------

{
    my @tokens = map { token() } 1 .. 10;
    my @reqs = map { my $i = $_; req($tokens[$i % 10]) } 0 .. 299;
    my $off = $ng->log_offset;

    my @res = $ng->parallel(\@reqs);

    my %passed;
    for my $i (0 .. $#res) {
        $passed{ $i % 10 }++ if status_of($res[$i]) eq '200';
    }

    is_deeply([ map { $passed{$_} // 0 } 0 .. 9 ], [ (1) x 10 ],
              'ten tokens used 30 times each, interleaved: one use of each '
              . 'passes');
    is(scalar(grep { is_replayed($_) } @res), 290,
       '... and the other 290 are replays')
        or diag 'answers: ' . summary(@res);

    my $log = $ng->log_since($off);
    is_deeply([ map { scalar grep { /decision=approved / }
                             decisions($log, jti_of($_)) } @tokens ],
              [ (1) x 10 ], '... one decision=approved line per jti');
}

# ---- 300 different tokens at once: no false replay --------------------------

{
    my @tokens = map { token() } 1 .. $N;

    my @res = $ng->parallel([ map { req($_) } @tokens ]);

    is(scalar(grep { status_of($_) eq '200' } @res), $N,
       "$N different tokens used concurrently: all pass")
        or diag 'answers: ' . summary(@res) . "\n" . $ng->error;

    @res = $ng->parallel([ map { req($_) } reverse @tokens ]);

    is(scalar(grep { is_replayed($_) } @res), $N,
       '... and all of them are replays when used again')
        or diag 'answers: ' . summary(@res);
}

ok($ng->stop, 'nginx stops gracefully');
unlink $state;      # saved at the stop

is($ng->crash_reports, '', 'no crashed worker, no sanitizer report');

unlike($ng->error_log, qr/\[(?:emerg|crit)\]/, 'no [emerg] or [crit]');

done_testing;
