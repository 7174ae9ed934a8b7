# The README's run command: tools/run-demo.sh shows the example flow (401
# without approval, 200 once with one, 403 on replay and on another
# request).  Runs it once (CIBA_RUN_ONCE=1), twice: cold and with the state
# its first run saved.

use strict;
use warnings;

use Test::More;
use File::Temp qw(tempdir);

my $port = $ENV{TEST_NGINX_SERVER_PORT} || 1984;
$port =~ s/.*://;
$port += 10;

my $dir = tempdir(CLEANUP => 1);
my @mods = split ' ', ($ENV{TEST_NGINX_LOAD_MODULES} // '');

plan skip_all => 'runs against a dynamic module only' if @mods != 1;
plan skip_all => 'not under valgrind' if $ENV{TEST_NGINX_USE_VALGRIND};

local $ENV{CIBA_RUN_ONCE} = 1;
local $ENV{CIBA_RUN_PORT} = $port;
local $ENV{CIBA_RUN_DIR} = $dir;
local $ENV{CIBA_MODULE} = $mods[0];
local $ENV{CIBA_NGINX} = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';

for my $run ('cold start', 'warm start') {
    my $out = `tools/run-demo.sh 2>&1`;
    is $? >> 8, 0, "$run: the demo exits 0" or diag $out;

    my @status = $out =~ m{^  HTTP/1\.1 (\d+)}mg;
    is_deeply \@status, [401, 200, 403, 403],
        "$run: refused, admitted once, replay and mismatch refused";

    like $out, qr/"error":"approval_required"/, "$run: approval_required";
    like $out, qr/"error":"approval_replayed"/, "$run: approval_replayed";
    like $out, qr/"error":"approval_mismatch"/, "$run: approval_mismatch";
    like $out, qr/decision=approved reason=token_valid action="refund"/,
        "$run: the decision line is shown";
    unlike $out, qr/Approval-Token: eyJ[\w-]{40,}\./,
        "$run: the token is not printed whole";

    if ($run eq 'cold start') {
        like $out, qr/without saved state/, 'cold start: waits out the rule';
        ok -s "$dir/ciba.state", 'cold start: the state was saved on exit';
    } else {
        unlike $out, qr/without saved state/, 'warm start: no wait';
    }
}

done_testing();
