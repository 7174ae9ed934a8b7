# The shared zone expires single-use records by their own expiry time,
# whatever the order they were inserted in (README: "Single use and
# restarts"; ngx_http_ciba_zone.c keeps an index of the records by expiry
# time).  An index that only expires from the head of an insertion-ordered
# queue fails here: the head is a long-lived record, so the short-lived
# records inserted after it would never be freed.
#
# In a zone of the smallest size (32k, 8 pages):
#
# - long-lived records first: $N_LONG tokens of /tools/refund, one after
#   the other (records until iat + 120 + 10 + 1);
# - then short-lived ones: tokens of /tools/short, exp 8 s ahead, no
#   leeway (records until exp + 1), until the zone is full: the refusal
#   is 503 approval_unavailable zone_full with Retry-After no later than
#   the short-lived records' expiry (the earliest record of the zone is a
#   short-lived one, though inserted last), an error line naming the zone
#   and its count, the decision line unavailable zone_full;
# - once the short-lived records have expired: exactly as many fresh
#   tokens as there were short-lived records pass (200, decision approved
#   token_valid) and the next ones are refused again (zone_full, the zone
#   holds the same count as before, its earliest record now a long-lived
#   one);
# - every long-lived token is still refused as a replay (403
#   approval_replayed jti_replayed): no long-lived record was evicted.
#
# Plain Perl (not a data-driven Test::Nginx file), as t/060-zone.t: the
# zone is filled with an amount of tokens only known at run time, and the
# checks span one nginx run with a wait in between.  nginx starts on a
# "warm" state file (CibaTest::warm_state: a zone that started an hour
# ago, without records), so tokens issued now pass at once.  About 12 s.
use strict;
use warnings;

use lib 't';

use Test::More;

BEGIN {
    plan skip_all => 'filling the zone takes hundreds of requests, and the '
                     . 'test waits for records to expire: timed, too slow '
                     . 'under valgrind (TEST_NGINX_USE_VALGRIND is set)'
        if $ENV{TEST_NGINX_USE_VALGRIND};
}

use Time::HiRes qw(sleep time);

use CibaNginx;
use CibaTest qw(digest jti warm_state token_location);
use CibaLoad qw(fast_mint kind summary decision_lines);

my $ng = CibaNginx->new(workers => 2);
my $port = $ng->port;

my $ARGS = 'order=42&amount=10';
my $BODY = '{"reason":"duplicate charge"}';

# /tools/refund: the default lifetimes (leeway 10 s, max age 300 s);
# tokens valid for 120 s (CibaLoad::fast_mint): records until
# min(exp, iat + 300) + 10 + 1 = iat + 131
my $LONG_LIFE = 120 + 10 + 1;

# /tools/short: leeway 0, max age 60 s; tokens with exp $SHORT_EXP s after
# the second T they are issued in: records until min(exp, iat + 60) + 0 + 1
# = T + $SHORT_LIFE.  The zone must be filled before T + $SHORT_EXP (the
# tokens expire then); 8 s leaves room for a slow machine.
my $SHORT_EXP = 8;
my $SHORT_LIFE = $SHORT_EXP + 0 + 1;

# the long-lived records inserted first: a quarter of what a 32k zone holds
my $N_LONG = 40;

# the fresh tokens sent beyond the room the short-lived records leave
my $EXTRA = 5;

my $state = warm_state(epoch => int(time) - 3600);

$ng->write_config(
    http   => "    ciba_zone z:32k state=$state;\n",
    server => "        ciba_action refund;\n\n"
              . token_location('= /tools/refund', $port)
              . token_location('= /tools/short', $port, 'ciba_leeway 0;',
                               'ciba_token_max_age 60s;')
              . <<"_EOC_");
        location = /backend {
            return 200 "upstream ran\\n";
        }
_EOC_


# ---- helpers ----------------------------------------------------------------

# a token for $path (its jti known): { path, jti, token }
sub token {
    my ($path, %claims) = @_;
    my $jti = jti();
    return { path => $path, jti => $jti,
             token => fast_mint(path => $path, args => $ARGS, body => $BODY,
                                claims => { jti => $jti, iat => int(time),
                                            %claims }) };
}

sub req {
    my ($t) = @_;
    return { method => 'POST', uri => "$t->{path}?$ARGS", body => $BODY,
             headers => [ 'Content-Type' => 'application/json',
                          'Approval-Token' => $t->{token} ] };
}

# one request at a time: [ $status, \%headers, $body ]
sub send_one {
    my ($t) = @_;
    my $r = req($t);
    return [ $ng->request($r->{method}, $r->{uri}, %$r) ];
}

# all at once: the answers in the order of the tokens
sub send_all {
    return $ng->parallel([ map { req($_) } @_ ]);
}

# "decision reason" of each jti in the decision lines logged since $off
# (a list: one per request)
sub decisions {
    my ($off) = @_;
    my %d;
    for (decision_lines($ng->log_since($off))) {
        my ($dec, $reason, $jti) =
            /ciba:\ decision=(\S+)\ reason=(\S+)\ action="refund"\ .*?
             \ jti="([^"]*)"/x
            or next;
        push @{ $d{$jti} }, "$dec $reason";
    }
    return \%d;
}

# each token's request logged exactly one decision line, the one given
# by $want->($i) for the i-th token
sub decisions_ok {
    my ($off, $tokens, $want, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $d = decisions($off);
    my @bad;

    for my $i (0 .. $#$tokens) {
        my $got = join ', ', @{ $d->{ $tokens->[$i]{jti} } || [] };
        my $exp = $want->($i);
        push @bad, "$tokens->[$i]{jti}: \"$got\", not \"$exp\""
            if $got ne $exp;
    }

    ok(!@bad, $name) or diag join "\n", @bad[0 .. ($#bad < 4 ? $#bad : 4)];
}

# the decision line a kind() of answer is logged with
my %Decision = (
    '200'                                  => 'approved token_valid',
    '503 approval_unavailable zone_full'   => 'unavailable zone_full',
    '403 approval_replayed jti_replayed'   => 'replayed jti_replayed',
);

sub decision_of { return $Decision{ kind($_[0]) } // 'none' }

# the admitted requests among @res (status 200): each answered by the
# upstream, none with a Retry-After
sub passed_ok {
    my ($name, @res) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my @ok = grep { ($_->[0] // '') eq '200' } @res;
    my @bad = grep { $_->[2] ne "upstream ran\n"
                     || exists $_->[1]{'retry-after'} } @ok;

    ok(@ok && !@bad, "$name: the upstream answered each of the "
                     . scalar(@ok) . ', no Retry-After')
        or diag 'first odd answer: ' . (($bad[0] || [])->[2] // '-');
}

# a refusal of the token $t: status, the whole JSON body (error, a
# description, reason, action, the digest of the request), Content-Type,
# Cache-Control, no WWW-Authenticate; Retry-After from $ra->[0] to
# $ra->[1] seconds, or none without $ra
sub refused_ok {
    my ($res, $t, $name, $status, $error, $reason, $ra) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my ($got, $h, $body) = @$res;
    my $digest = digest(action => 'refund', method => 'POST',
                        path => $t->{path}, args => $ARGS, body => $BODY);

    is($got // 'none', $status, "$name: $status");
    like($body // '',
         qr/\A\{"error":"\Q$error\E","error_description":"[^"]+","reason":"\Q$reason\E","action":"refund","action_digest":"\Q$digest\E"\}\n\z/,
         "$name: the body says $error, $reason, the action and its digest");
    is($h->{'content-type'} // '', 'application/json', "$name: JSON");
    is($h->{'cache-control'} // '', 'no-store', "$name: Cache-Control");
    ok(!exists $h->{'www-authenticate'}, "$name: no WWW-Authenticate");

    if (!$ra) {
        ok(!exists $h->{'retry-after'}, "$name: no Retry-After");
        return;
    }

    my $v = $h->{'retry-after'} // '';
    ok($v =~ /^\d+$/ && $v >= $ra->[0] && $v <= $ra->[1],
       "$name: Retry-After $ra->[0] to $ra->[1] s")
        or diag "Retry-After: \"$v\"";
}

# the error line of a refusal for want of room: the zone and its count
sub zone_full_logged {
    my ($off, $count, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    like($ng->log_since($off),
         qr/\[error\].*ciba: zone "z" is full of live single-use records \($count\), the approval is refused/,
         $name);
}


# ---- start -------------------------------------------------------------------

{
    my $off = $ng->log_offset;

    if (!ok($ng->start, 'nginx starts with a 32k zone')) {
        diag $ng->error;
        done_testing;
        exit;
    }

    like($ng->log_since($off),
         qr/\[notice\].*ciba: loaded 0 single-use records from "\Q$state\E"/,
         'the warm state is loaded (the zone started an hour ago)');
}


# ---- long-lived records first ------------------------------------------------

my @long = map { token('/tools/refund') } 1 .. $N_LONG;
my $off = $ng->log_offset;

# one after the other: they go into the zone in this order
my @res = map { send_one($_) } @long;

is(summary(@res), "200: $N_LONG",
   "$N_LONG long-lived tokens pass, inserted first, one after the other");
passed_ok('the long-lived tokens', @res);
decisions_ok($off, \@long, sub { 'approved token_valid' },
             '... each logged approved token_valid');


# ---- then short-lived records until the zone is full -------------------------

# all issued in one second T and valid until T + $SHORT_EXP: start at the
# beginning of a second for the most time to fill the zone
{
    my $s = int(time);
    sleep($s + 1.02 - time) while int(time) == $s;
}

my $T = int(time);
my (@short, @short_res);

$off = $ng->log_offset;

# batches of 32 at once until one is refused (a 32k zone holds fewer
# than 256 records)
for (1 .. 8) {
    my @batch = map { token('/tools/short', iat => $T,
                            exp => $T + $SHORT_EXP) } 1 .. 32;
    my @r = send_all(@batch);
    push @short, @batch;
    push @short_res, @r;
    last if grep { kind($_) ne '200' } @r;
}

my $filled = time;
my $n_short = grep { kind($_) eq '200' } @short_res;
my $n_full = grep { kind($_) eq '503 approval_unavailable zone_full' }
             @short_res;

cmp_ok($filled, '<', $T + $SHORT_EXP,
       'the zone was filled while the short-lived tokens were valid');

is($n_short + $n_full, scalar @short,
   'short-lived tokens: each passed or was refused with zone_full')
    or diag 'answers: ' . summary(@short_res);

cmp_ok($n_short, '>=', 32,
       "short-lived tokens passed until the zone was full: $n_short");
cmp_ok($n_full, '>=', 1, "... then $n_full were refused");

diag "records in a full 32k zone: $N_LONG long-lived, $n_short short-lived"
    if $n_full;

passed_ok('the short-lived tokens admitted', @short_res);

# one more, alone: its answer and its lines checked on their own.  The
# earliest record is a short-lived one (inserted last, after all the
# long-lived ones): Retry-After is at most $SHORT_LIFE s
my $one = token('/tools/short', iat => $T, exp => $T + $SHORT_EXP);
my $one_off = $ng->log_offset;

refused_ok(send_one($one), $one, 'a short-lived token in the full zone',
           503, 'approval_unavailable', 'zone_full', [ 1, $SHORT_LIFE ]);

zone_full_logged($one_off, $N_LONG + $n_short,
                 '... the error line names the zone and its '
                 . ($N_LONG + $n_short) . ' records');

decisions_ok($one_off, [ $one ], sub { 'unavailable zone_full' },
             '... the decision line says unavailable zone_full');

decisions_ok($off, \@short, sub { decision_of($short_res[$_[0]]) },
             'each short-lived token logged the decision of its answer');


# ---- the short-lived records expire ------------------------------------------

# fresh long-lived tokens, $EXTRA more than the short-lived records left
# room for: minted now, sent once those records have expired
my @fresh = map { token('/tools/refund') } 1 .. $n_short + $EXTRA;

# the records expire at T + $SHORT_LIFE; 1.5 s more for nginx's cached
# clock and a slow machine
{
    my $wait = $T + $SHORT_LIFE + 1.5 - time;
    note sprintf 'waiting %.1f s for the short-lived records to expire',
                 $wait;
    sleep $wait if $wait > 0;
}

$off = $ng->log_offset;

my @fresh_res = send_all(@fresh);

is(summary(@fresh_res),
   "200: $n_short, 503 approval_unavailable zone_full: $EXTRA",
   ($n_short + $EXTRA) . ' fresh tokens at once: as many as there were '
   . "short-lived records ($n_short) pass, the other $EXTRA are refused");

{
    my ($no) = grep { kind($fresh_res[$_]) ne '200' } 0 .. $#fresh_res;

    passed_ok('the fresh tokens admitted', @fresh_res);

    # the earliest record is now the first long-lived one: still live
    refused_ok($fresh_res[$no], $fresh[$no], 'a fresh token beyond the room',
               503, 'approval_unavailable', 'zone_full',
               [ $SHORT_LIFE + 1, $LONG_LIFE ])
        if defined $no;
}

zone_full_logged($off, $N_LONG + $n_short,
                 'the zone is full again with as many records as before ('
                 . ($N_LONG + $n_short) . ')');

decisions_ok($off, \@fresh, sub { decision_of($fresh_res[$_[0]]) },
             'each fresh token logged the decision of its answer');

{
    my $d = decisions($off);
    is(scalar(grep { ($d->{ $_->{jti} }[0] // '') eq 'approved token_valid' }
              @fresh),
       $n_short, "... $n_short of them approved token_valid");
}


# ---- the long-lived records were not evicted ---------------------------------

$off = $ng->log_offset;

# the first one alone: the head of the insertion order
refused_ok(send_one($long[0]), $long[0],
           'the first long-lived token again', 403, 'approval_replayed',
           'jti_replayed');

decisions_ok($off, [ $long[0] ], sub { 'replayed jti_replayed' },
             '... the decision line says replayed jti_replayed');

$off = $ng->log_offset;

@res = send_all(@long[1 .. $#long]);

is(summary(@res), "403 approval_replayed jti_replayed: " . ($N_LONG - 1),
   'every other long-lived token is still refused as a replay');

decisions_ok($off, [ @long[1 .. $#long] ], sub { 'replayed jti_replayed' },
             '... each logged replayed jti_replayed');


# ---- end ---------------------------------------------------------------------

ok($ng->stop, 'nginx stops');
unlink $state;      # the zone, saved at the stop

is($ng->crash_reports, '', 'no crashed worker, no sanitizer report');

done_testing;
