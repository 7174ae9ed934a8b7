# The approver page of the development AS (GET /approver of
# tools/dev-as/dev-as.mjs), driven in a real headless Chromium: nginx with
# the module in poll mode (client nginx-poll) in front of a sample
# upstream, dev-as as the authorization server, and
# t/fixtures/browser/approve-in-browser.mjs (playwright-core, Debian's
# /usr/bin/chromium) as the human.
#
# - the page: 200 text/html with a strict Content-Security-Policy (hashes,
#   no external source, Trusted Types), nosniff, no-store, DENY framing;
#   with nothing pending it says "No pending approvals.";
# - approve: a request through nginx is answered 401 approval_pending with
#   a handle; the page shows it (binding message with its spaces, user
#   and sub, client, action, method, URL, path, the arguments decoded,
#   the body's SHA-256, action digest, a running countdown); a
#   screenshot goes to t/artifacts/approver.png; Approve moves it to
#   "Recently decided" as approved; the retry with the handle after the
#   poll interval reaches the upstream: 200, $ciba_decision approved,
#   $ciba_approver alice's sub, in the headers, the access log and the
#   error log;
# - deny: the same with Deny: the retry is 403 approval_denied;
# - hostile data: a path with markup and quotes (percent-encoded in the
#   authorization_details; the page shows it as sent and decoded beside
#   it) and arguments with markup, quotes and an escape (decoded in
#   "args", unlike the binding message, which the module sanitizes) are
#   shown as text, equal to the raw values, and create no element,
#   handler, dialog or script;
# - cross-site: a page on another origin (nginx) that posts to
#   /admin/approve in the same browser (an HTML form with a text/plain
#   JSON body, fetch() in no-cors and cors modes) changes nothing;
# - the page never loads anything from another origin and logs no error
#   (CSP violations included).
#
# Plain Perl (not a data-driven Test::Nginx file).  Needs node >= 20, the
# development AS's and the browser tools' packages (make deps: npm ci in
# tools/dev-as and t/fixtures/browser) and /usr/bin/chromium (make deps: apt
# package chromium).  Without them it is skipped, or fails when $CI is set.
# Not run under valgrind (timing).  Ports: nginx on TEST_NGINX_SERVER_PORT,
# the AS on a free port (--port 0); Chromium talks to playwright over a
# pipe, not a port.
use strict;
use warnings;

use lib 't';

use Test::More;

use FindBin;

use DevAS;

my ($ROOT, $BROWSER_DIR, $CHROMIUM);

BEGIN {
    $ROOT = "$FindBin::Bin/..";
    $BROWSER_DIR = "$ROOT/t/fixtures/browser";
    $CHROMIUM = $ENV{CIBA_TEST_CHROMIUM} || '/usr/bin/chromium';

    plan skip_all => 'timing-based (poll interval, countdowns): not run '
                     . 'under valgrind (TEST_NGINX_USE_VALGRIND is set)'
        if $ENV{TEST_NGINX_USE_VALGRIND};

    my @missing = DevAS::missing();
    push @missing, "$CHROMIUM (apt package chromium)" unless -x $CHROMIUM;
    push @missing, 't/fixtures/browser/node_modules/playwright-core (npm ci in '
                   . 't/fixtures/browser)'
        unless -d "$BROWSER_DIR/node_modules/playwright-core";

    if (@missing) {
        my $why = 'missing: ' . join(', ', @missing)
                  . ' (run "make deps")';
        if ($ENV{CI}) {
            # in CI a missing browser must not pass as "skipped"
            plan tests => 1;
            fail("the approver browser test cannot run: $why");
            exit 1;
        }
        plan skip_all => $why;
    }
}

use File::Path qw(make_path);
use IO::Socket::INET ();
use Digest::SHA qw(sha256_hex);
use JSON::PP ();
use MIME::Base64 qw(encode_base64);
use Time::HiRes qw(sleep time);

use CibaNginx;
use CibaTest qw(warm_state);
use Spawn ();

my $JSON = JSON::PP->new->canonical->allow_nonref;
my $T0 = time;

my $ng = CibaNginx->new(workers => 2);
my $port = $ng->port;
my $root = $ng->servroot;
my $acclog = "$root/logs/access.log";
my $AUD = 'https://tools.example';
my $ARTIFACTS = "$ROOT/t/artifacts";
my $BROWSER_LOG = "$root/logs/browser.log";

make_path($ARTIFACTS);


# ---- the development AS ------------------------------------------------------

my $AS = eval {
    DevAS::start(log => "$root/logs/dev-as.log",
                 args => [ '--audience', $AUD, '--verbose' ]);
} or BAIL_OUT($@);
my $asport = $DevAS::Port;

sub as { return DevAS::call(@_) }

my %SUB = DevAS::subs();

ok $SUB{alice} && $SUB{bob} && $SUB{carol}, 'the AS has alice, bob, carol'
    or BAIL_OUT('no demo users');

my $jwks_file = "$root/conf/as-jwks.json";
{
    my $res = DevAS::save_jwks($jwks_file);
    is $res->{status}, 200, 'the AS: /jwks';
}


# ---- nginx -------------------------------------------------------------------

my $state = warm_state();
my $BASIC = encode_base64('nginx-poll:poll-secret', '');

# a page of another origin (nginx's port) that tries to approve at the AS
# from the same browser; its title says what happened
sub write_evil_page {
    my ($id) = @_;
    my $body = $JSON->encode({ auth_req_id => $id });
    (my $form_name = substr($body, 0, -1) . ',"x":"') =~ s/"/&quot;/g;
    open my $out, '>', "$root/html/evil.html" or die "evil.html: $!";
    print $out <<"_EOP_";
<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>evil</title></head>
<body>
<iframe name="sink" src="about:blank"></iframe>
<form id="f" method="POST" action="$AS/admin/approve" target="sink"
      enctype="text/plain">
<input type="hidden" name="$form_name" value='"}'>
</form>
<script>
const said = [];
async function go() {
  document.getElementById('f').submit();
  try {
    await fetch('$AS/admin/approve', { method: 'POST', mode: 'no-cors',
      headers: { 'Content-Type': 'text/plain' }, body: '$body' });
    said.push('no-cors: sent');
  } catch (e) { said.push('no-cors: ' + e.message); }
  try {
    const r = await fetch('$AS/admin/approve', { method: 'POST',
      headers: { 'Content-Type': 'application/json' }, body: '$body' });
    said.push('cors: ' + r.status);
  } catch (e) { said.push('cors: refused'); }
  setTimeout(() => { document.title = 'done ' + said.join('; '); }, 1500);
}
go();
</script>
</body></html>
_EOP_
    close $out;
}

# /poll/refund: as in t/097; /poll/x/...: any path (the hostile one)
sub protected {
    my ($loc) = @_;
    return DevAS::refund_location($loc, $port, delivery => 'poll',
                                  prefix => '/_ciba/');
}

$ng->write_config(
    http => DevAS::http_config(state => $state, keys => $jwks_file,
                               audience => $AUD) . <<"_EOC_",

    log_format ciba '\$status \$request_method \$request_uri '
                    'decision=\$ciba_decision reason=\$ciba_reason '
                    'approver=\$ciba_approver';
_EOC_
    server => <<"_EOC_"
        access_log $acclog ciba;

        location ^~ /backend {
            return 200 "upstream ran \$request_uri\\n";
        }

        location = /evil.html {
            root $root/html;
            default_type text/html;
        }
_EOC_
        . DevAS::locations('/_ciba/', $BASIC)
        . protected('= /poll/refund')
        . protected('^~ /poll/x/'));

$ng->start or BAIL_OUT('nginx: ' . $ng->error);


# ---- helpers -----------------------------------------------------------------

my $BODY = '{"reason":"duplicate charge"}';

# req($user, $order, handle => $h, path => '/poll/x/...', query => 'a=b'):
# the answer (query: more arguments after order and amount)
sub req {
    my ($user, $order, %o) = @_;
    my @h = ('X-User' => $user, 'Content-Type' => 'application/json');
    push @h, 'Approval-Handle' => $o{handle} if $o{handle};
    my $uri = ($o{path} // '/poll/refund') . "?order=$order&amount=30"
              . (defined $o{query} ? "&$o{query}" : '');
    my ($st, $hd, $body) = $ng->request('POST', $uri, headers => \@h,
                                        body => $BODY, timeout => 20);
    my $json = eval { $JSON->decode($body) };
    return { status => $st // 0, headers => $hd // {}, body => $body // '',
             json => $json // {}, at => time, uri => $uri };
}

sub pending_ok {
    my ($r, $order, $name) = @_;
    is $r->{status}, 401, "$name: 401" or diag $r->{body};
    is $r->{json}{error}, 'approval_pending', "$name: approval_pending";
    like $r->{json}{approval_handle} // '', qr/^h1\.[A-Za-z0-9_-]+$/,
        "$name: a handle";
    is $r->{json}{binding_message}, "Refund 30 EUR on order $order",
        "$name: the binding message, with spaces";
    like $r->{json}{action_digest} // '', qr/^[A-Za-z0-9_-]{43}$/,
        "$name: the action digest";
}

# the AS's pending record with this binding message
sub as_pending {
    my ($bm) = @_;
    my ($p) = grep { ($_->{binding_message} // '') eq $bm }
              @{ as(GET => '/admin/pending')->{pending} // [] };
    return $p;
}

# browser(@args): the JSON report of approve-in-browser.mjs and its exit
# status; its stderr goes to logs/browser.log
sub browser {
    my @args = @_;
    my ($pid, $fh, $out) = Spawn::start(
        [ 'node', "$BROWSER_DIR/approve-in-browser.mjs",
          '--chromium', $CHROMIUM, @args ],
        stderr_append => $BROWSER_LOG, all => 1, wait => 120);
    if (!defined $out) {
        kill 'TERM', $pid;
        diag "approve-in-browser: no answer in 120 s";
    }
    close $fh;
    waitpid $pid, 0;
    my $rc = $? >> 8;
    $out //= '';
    my $rep = eval { $JSON->decode($out) };
    if (!$rep) {
        diag "approve-in-browser (exit $rc) printed: $out";
        if (open my $in, '<', $BROWSER_LOG) { local $/; diag <$in> }
    }
    return ($rep // {}, $rc);
}

# what every page visit must have been: no error, dialog, foreign request
sub page_clean_ok {
    my ($rep, $name) = @_;
    is_deeply $rep->{errors}, [], "$name: no page or console error"
        or diag explain $rep->{errors};
    is_deeply $rep->{dialogs}, [], "$name: no dialog";
    is_deeply $rep->{foreign_requests}, [],
        "$name: nothing requested from another origin";
    my $p = $rep->{page} // {};
    is $p->{scripts}, 1, "$name: one script (the page's own)";
    is(($p->{images} // 1) + ($p->{iframes} // 1) + ($p->{objects} // 1), 0,
       "$name: no image, frame or object");
    is $p->{inline_handlers}, 0, "$name: no on* attribute";
}

# the item as the page showed it, against the request and the AS's record:
# $path as sent (percent-encoded), $decoded when it differs, the
# arguments [[name, [values]], ...]
sub item_ok {
    my ($rep, $r, $p, $user, $path, $name, %o) = @_;
    my $it = $rep->{item} // {};
    my $f = $it->{fields} // {};
    is $it->{auth_req_id}, $p->{auth_req_id},
        "$name: page: the AS's auth_req_id";
    is $it->{state}, 'pending', "$name: page: pending";
    is $f->{binding_message}, $r->{json}{binding_message},
        "$name: page: the binding message";
    is $f->{login_hint}, $user, "$name: page: the user";
    is $f->{account}, $SUB{$user}, "$name: page: the user's sub";
    is $f->{client_id}, 'nginx-poll (poll mode)', "$name: page: the client";
    is $f->{actions}, 'refund', "$name: page: the action";
    is $f->{method}, 'POST', "$name: page: the method";
    is $f->{path}, $path, "$name: page: the path as sent";
    is $f->{path_decoded}, $o{decoded},
        "$name: page: the path decoded " . (defined $o{decoded}
                                            ? 'beside it' : '(not shown: the same)');
    is $f->{locations}, "http://localhost$path", "$name: page: the URL";
    is_deeply $it->{args}, $o{args}, "$name: page: the arguments, as text"
        or diag explain $it->{args};
    is $f->{body_sha256}, sha256_hex($BODY), "$name: page: the body's hash";
    is $f->{identifier}, $r->{json}{action_digest},
        "$name: page: the action digest";
    is_deeply $it->{buttons}, ['approve:enabled', 'deny:enabled'],
        "$name: page: Approve and Deny";
    my ($c0, $c1) = @{ $it->{countdown} // [] };
    ok defined $c0 && $c0 > 250 && $c0 <= 300,
        "$name: page: expires in about 5 min"
        or diag 'countdown: ' . ($c0 // 'none');
    ok defined $c1 && $c1 < $c0, "$name: page: the countdown runs"
        or diag 'countdown: ' . join(' -> ', map { $_ // '?' } $c0, $c1);
}

# retries with the handle once the poll interval (5 s: oidc-provider
# sends none) has passed; answers the last answer
sub retry_after_interval {
    my ($r, $user, $order, %o) = @_;
    my $left = $r->{at} + 5.2 - time;
    sleep $left if $left > 0;
    my $res = req($user, $order, handle => $r->{json}{approval_handle}, %o);
    if ($res->{status} == 401
        && ($res->{json}{error} // '') eq 'approval_pending')
    {
        # the zone paced it: once more after its Retry-After
        my $wait = $res->{headers}{'retry-after'} // 5;
        diag "retry paced: waiting $wait s";
        sleep $wait + 0.2;
        $res = req($user, $order, handle => $r->{json}{approval_handle}, %o);
    }
    return $res;
}


# raw_get($path, $host): the status and body of a GET to the AS with this
# Host header (HTTP::Tiny sets Host itself)
sub raw_get {
    my ($path, $host) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $asport, Timeout => 10)
        or return (0, "connect: $!");
    print $s "GET $path HTTP/1.1\r\nHost: $host\r\n"
             . "Connection: close\r\n\r\n";
    local $/;
    my $res = <$s> // '';
    close $s;
    my ($st) = $res =~ m{^HTTP/1\.1 (\d+)};
    my (undef, $body) = split /\r\n\r\n/, $res, 2;
    return ($st // 0, $body // '');
}


# ---- the page itself ----------------------------------------------------------

{
    my $res = DevAS::raw(GET => '/approver');
    is $res->{status}, 200, 'GET /approver: 200';
    my $h = $res->{headers};
    like $h->{'content-type'}, qr{^text/html; charset=utf-8$}i,
        'GET /approver: text/html';
    is $h->{'x-content-type-options'}, 'nosniff', 'GET /approver: nosniff';
    is $h->{'cache-control'}, 'no-store', 'GET /approver: no-store';
    is $h->{'x-frame-options'}, 'DENY', 'GET /approver: not framed';
    my $csp = $h->{'content-security-policy'} // '';
    my %csp = map { /^\s*(\S+)\s*(.*?)\s*$/ ? ($1 => $2) : () }
              split /;/, $csp;
    is $csp{'default-src'}, "'none'", 'CSP: default-src none';
    like $csp{'script-src'} // '', qr/^'sha256-[A-Za-z0-9+\/]+=*'$/,
        'CSP: script-src one hash only';
    like $csp{'style-src'} // '', qr/^'sha256-[A-Za-z0-9+\/]+=*'$/,
        'CSP: style-src one hash only';
    is $csp{'connect-src'}, "'self'", 'CSP: connect-src self';
    is $csp{'frame-ancestors'}, "'none'", 'CSP: frame-ancestors none';
    is $csp{'form-action'}, "'none'", 'CSP: form-action none';
    is $csp{'require-trusted-types-for'}, "'script'", 'CSP: Trusted Types';
    unlike $res->{content}, qr{(?:src|href)\s*=\s*["']?(?:https?:)?//}i,
        'GET /approver: no external resource';

    my $post = DevAS::form('/approver', {});
    isnt $post->{status}, 200, 'POST /approver: refused';

    # a name made to resolve to 127.0.0.1 (DNS rebinding): refused
    for my $path ('/approver', '/admin/pending') {
        my ($st, $body) = raw_get($path, "evil.example:$asport");
        is $st, 403, "GET $path with a foreign Host: 403";
        like $body, qr/"error": "forbidden"/,
            "GET $path with a foreign Host: forbidden";
        ($st) = raw_get($path, "localhost:$asport");
        is $st, 200, "GET $path with Host localhost: 200";
    }
}

# nothing pending
{
    my ($rep, $rc) = browser('--url', "$AS/approver");
    is $rc, 0, 'empty page: the browser run went well'
        or diag $rep->{failure};
    page_clean_ok($rep, 'empty page');
    is $rep->{page}{status}, 'ok', 'empty page: the page reached the AS';
    ok $rep->{page}{empty_shown}, 'empty page: the empty note is shown';
    is $rep->{page}{empty_text}, 'No pending approvals.',
        'empty page: "No pending approvals."';
    is $rep->{page}{pending_items}, 0, 'empty page: no item';
    is $rep->{headers}{':status'}, 200, 'empty page: 200';
}


# ---- approve in the browser ---------------------------------------------------

{
    my $r = req('alice', 'B1');
    pending_ok($r, 'B1', 'approve: first request');
    my $p = as_pending($r->{json}{binding_message});
    ok $p, 'approve: pending at the AS' or BAIL_OUT('not pending at the AS');

    my $shot = "$ARTIFACTS/approver.png";
    unlink $shot, "$ARTIFACTS/approver-after.png";
    my ($rep, $rc) = browser('--url', "$AS/approver",
                             "--binding=$r->{json}{binding_message}",
                             "--digest=$r->{json}{action_digest}",
                             '--decide', 'approve', '--screenshot', $shot);
    is $rc, 0, 'approve: the browser run went well' or diag $rep->{failure};
    page_clean_ok($rep, 'approve');
    item_ok($rep, $r, $p, 'alice', '/poll/refund', 'approve',
            args => [ [ 'order', ['B1'] ], [ 'amount', ['30'] ] ]);
    ok !$rep->{page}{empty_shown}, 'approve: no empty note while pending';
    is $rep->{page}{pending_count}, 1, 'approve: the page counts one';
    ok -s $shot, "approve: the screenshot ($shot)";
    ok -s "$ARTIFACTS/approver-after.png", 'approve: the screenshot after';

    is $rep->{after}{state}, 'approved',
        'approve: the page moved it to "Recently decided" as approved';
    like $rep->{after}{result} // '', qr/^Approved here at /,
        'approve: the page says "Approved here"';
    ok $rep->{after}{buttons_hidden}, 'approve: no buttons any more';
    ok $rep->{page_after}{empty_shown},
        'approve: "No pending approvals." afterwards';

    is as(GET => "/admin/requests/$p->{auth_req_id}")->{state}, 'approved',
        'approve: approved at the AS';

    my $res = retry_after_interval($r, 'alice', 'B1');
    is $res->{status}, 200, 'approve: the retry with the handle: 200'
        or diag $res->{body};
    is $res->{body}, "upstream ran /backend?order=B1&amount=30\n",
        'approve: from the upstream';
    is $res->{headers}{'x-ciba-decision'}, 'approved',
        'approve: $ciba_decision approved';
    is $res->{headers}{'x-ciba-approver'}, $SUB{alice},
        'approve: $ciba_approver is alice\'s sub';
    is as(GET => "/admin/requests/$p->{auth_req_id}")->{state}, 'redeemed',
        'approve: the AS issued the token';

    my $again = req('alice', 'B1', handle => $r->{json}{approval_handle});
    is $again->{status}, 403, 'approve: a second redemption: 403';
    is $again->{json}{error}, 'approval_replayed',
        'approve: a second redemption: approval_replayed';
}


# ---- deny in the browser, after a cross-site page tried to approve ----------------

{
    my $r = req('bob', 'B2');
    pending_ok($r, 'B2', 'deny: first request');
    my $p = as_pending($r->{json}{binding_message});
    ok $p, 'deny: pending at the AS' or BAIL_OUT('not pending at the AS');

    # the other origin's page, in the same kind of browser
    write_evil_page($p->{auth_req_id});
    my ($rep, $rc) = browser('--url', "http://127.0.0.1:$port/evil.html",
                             '--wait-title', '^done');
    is $rc, 0, 'cross-site: the browser run went well'
        or diag $rep->{failure};
    like $rep->{title} // '', qr/cors: refused/,
        'cross-site: the cors fetch was refused'
        or diag $rep->{title};
    is as(GET => "/admin/requests/$p->{auth_req_id}")->{state}, 'pending',
        'cross-site: still pending at the AS';

    ($rep, $rc) = browser('--url', "$AS/approver",
                          "--id=$p->{auth_req_id}",
                          "--digest=$r->{json}{action_digest}",
                          '--decide', 'deny');
    is $rc, 0, 'deny: the browser run went well' or diag $rep->{failure};
    page_clean_ok($rep, 'deny');
    item_ok($rep, $r, $p, 'bob', '/poll/refund', 'deny',
            args => [ [ 'order', ['B2'] ], [ 'amount', ['30'] ] ]);
    is $rep->{after}{state}, 'denied',
        'deny: the page moved it to "Recently decided" as denied';
    like $rep->{after}{result} // '', qr/^Denied here at /,
        'deny: the page says "Denied here"';
    is as(GET => "/admin/requests/$p->{auth_req_id}")->{state}, 'denied',
        'deny: denied at the AS';

    my $res = retry_after_interval($r, 'bob', 'B2');
    is $res->{status}, 403, 'deny: the retry with the handle: 403'
        or diag $res->{body};
    is $res->{json}{error}, 'approval_denied', 'deny: approval_denied';
    is $res->{headers}{'x-ciba-decision'}, 'denied',
        'deny: $ciba_decision denied';
    unlike $res->{body}, qr/upstream ran/, 'deny: the upstream did not run';
}


# ---- every field of authorization_details, straight from the AS -----------------

{
    # what nginx may send beyond the requests above: a repeated argument,
    # an empty one, one with a right-to-left override, args_truncated, a
    # path that is not UTF-8 once decoded, an operator's string field and
    # a member that is no string
    my $details = JSON::PP->new->canonical->ascii->encode([ {
        type => 'nginx_ciba_action', actions => ['refund'],
        identifier => 'uEWPVbMc1DJRgNm6CWAdhXMDfzdUfKij4fUkDBCmWwg',
        method => 'POST', path => '/tools/%FF%20x',
        locations => ['https://tools.example/tools/%FF%20x'],
        args => { amount => [ '30', '3000' ], empty => '',
                  note => "a\x{202e}b" },
        args_truncated => JSON::PP::true(), body_sha256 => 'ab' x 32,
        uri => 'https://tools.example/tools/%FF%20x?amount=30',
        count => 5 } ]);
    my $res = DevAS::form('/backchannel', {
        scope => 'openid', login_hint => 'bob',
        binding_message => 'Check every field',
        authorization_details => $details },
        Authorization => "Basic $BASIC");
    my $id = eval { $JSON->decode($res->{content})->{auth_req_id} };
    ok $id, 'fields: the AS took the request' or diag $res->{content};

    my ($rep, $rc) = browser('--url', "$AS/approver", '--id', $id // '-',
                             '--screenshot',
                             "$ARTIFACTS/approver-fields.png");
    is $rc, 0, 'fields: the browser run went well' or diag $rep->{failure};
    page_clean_ok($rep, 'fields');
    my $it = $rep->{item} // {};
    my $f = $it->{fields} // {};
    is $f->{binding_message}, 'Check every field', 'fields: the message';
    is $f->{path}, '/tools/%FF%20x', 'fields: the path as sent';
    is $f->{path_decoded}, '(not valid percent-encoded UTF-8)',
        'fields: a path that does not decode: said so';
    is_deeply $it->{args},
        [ [ 'amount', [ '30', '3000' ] ], [ 'empty', [''] ],
          [ 'note', ['a\u202eb'] ] ],
        'fields: a repeated argument with each value, an empty one, the '
        . 'override shown escaped' or diag explain $it->{args};
    like $f->{args_truncated} // '', qr/^More arguments were not shown/,
        'fields: args_truncated noted';
    is $f->{body_sha256}, 'ab' x 32, 'fields: the body hash';
    is_deeply $it->{extras},
        { uri => 'https://tools.example/tools/%FF%20x?amount=30' },
        'fields: the operator\'s string field, under its name';
    is $f->{other}, '{"count":5}', 'fields: other members as JSON text';

    my ($st) = as(POST => '/admin/deny', { auth_req_id => $id });
    is $st, 200, 'fields: denied (clean up)';
}


# ---- hostile data -----------------------------------------------------------------

{
    # a path with markup, quotes, an ampersand (nginx sends it
    # percent-encoded as sent; the page also shows it decoded), and
    # arguments with markup and quotes (decoded in "args") and an escape
    # sequence (shown as \x1b); the binding message would have been
    # sanitized
    my $raw = q{/poll/x/<img src=x onerror=alert(1)>"'&amp;<script>alert(2)</script>};
    (my $enc = $raw) =~ s{([^A-Za-z0-9/_.~-])}{sprintf '%%%02X', ord $1}ge;
    my $note = q{<img src=x onerror=alert(3)>"'};
    my $memo = "\e[2J<b>x</b>";
    my $qenc = sub { (my $v = shift) =~ s{([^A-Za-z0-9_.~-])}
                                         {sprintf '%%%02X', ord $1}ge; $v };

    my $r = req('carol', 'B3', path => $enc,
                query => 'note=' . $qenc->($note) . '&memo='
                         . $qenc->($memo));
    pending_ok($r, 'B3', 'hostile: first request');
    my $p = as_pending($r->{json}{binding_message});
    ok $p, 'hostile: pending at the AS' or BAIL_OUT('not pending at the AS');
    is $p->{authorization_details}[0]{path}, $enc,
        'hostile: the AS has the path as sent (it reaches the page)';
    is $p->{authorization_details}[0]{args}{note}, $note,
        'hostile: the AS has the argument decoded (it reaches the page)';

    my ($rep, $rc) = browser('--url', "$AS/approver",
                             "--id=$p->{auth_req_id}",
                             '--screenshot', "$ARTIFACTS/approver-hostile.png",
                             '--decide', 'approve');
    is $rc, 0, 'hostile: the browser run went well' or diag $rep->{failure};
    page_clean_ok($rep, 'hostile');
    item_ok($rep, $r, $p, 'carol', $enc, 'hostile', decoded => $raw,
            args => [ [ 'order', ['B3'] ], [ 'amount', ['30'] ],
                      [ 'note', [$note] ], [ 'memo', ['\x1b[2J<b>x</b>'] ] ]);
    is $rep->{after}{state}, 'approved', 'hostile: approved on the page';

    my $res = retry_after_interval($r, 'carol', 'B3', path => $enc,
                                   query => 'note=' . $qenc->($note)
                                            . '&memo=' . $qenc->($memo));
    is $res->{status}, 200, 'hostile: the retry with the handle: 200'
        or diag $res->{body};
    is $res->{headers}{'x-ciba-approver'}, $SUB{carol},
        'hostile: $ciba_approver is carol\'s sub';
    like $res->{body}, qr{^upstream ran /backend%3Cimg}, 'hostile: from the upstream';
}


# ---- the logs ---------------------------------------------------------------------

{
    # nginx may write the last request's line just after its answer
    my @acc;
    for (1 .. 40) {
        open my $in, '<', $acclog or die "$acclog: $!";
        @acc = <$in>;
        close $in;
        last if grep { m{^200 POST /poll/x/} } @acc;
        sleep 0.05;
    }
    ok((grep { m{^401 POST /poll/refund\?order=B1&amount=30 }
               && /decision=pending / } @acc),
       'access log: approve: pending first');
    ok((grep { m{^200 POST /poll/refund\?order=B1&amount=30 }
               && / decision=approved / && / approver=\Q$SUB{alice}\E$/ }
        @acc), 'access log: approve: 200, approved, approver alice\'s sub')
        or diag explain \@acc;
    ok((grep { m{^403 POST /poll/refund\?order=B2&amount=30 }
               && / decision=denied / } @acc),
       'access log: deny: 403, denied');
    ok((grep { m{^200 POST /poll/x/\S+\?order=B3&amount=30&note=\S+ }
               && / decision=approved / && / approver=\Q$SUB{carol}\E$/ }
        @acc), 'access log: hostile path: 200, approver carol\'s sub');

    my $log = $ng->error_log;
    like $log, qr/ciba: decision=approved .*approver="\Q$SUB{alice}\E"/,
        'error log: decision=approved, approver alice\'s sub';
    like $log, qr/ciba: decision=denied /, 'error log: decision=denied';
    unlike $log, qr/\[(?:alert|crit|emerg)\]/, 'error log: nothing alarming';
    is $ng->crash_reports, '', 'no crashes';
}

diag sprintf 'elapsed: %.1f s; screenshots in %s', time - $T0, $ARTIFACTS;

$ng->stop;
DevAS::stop();

done_testing;
