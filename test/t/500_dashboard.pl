# vproxy-dashboard without a browser, on a queue served by vproxy-worker
# with the fake transcode: it runs as the monitor role (and says so when
# a role lacks the grants or could write); /metrics, read by the reference
# Prometheus parser, equals the table; /events delivers a job's end within
# a second to every client over one LISTEN connection, and progress; the
# database sees at most one query per second per view however many
# clients ask; 401 without the token, a login cookie that is HttpOnly and
# SameSite=Strict; media links are signed, answer Range requests and never
# leave the storage directory; a stalled or slow client stalls nobody; the
# dashboard rides out a database restart and stops cleanly on SIGTERM.
use strict;
use warnings;
use File::Path qw(make_path);
use IO::Socket::INET;
use JSON::PP;
use POSIX ();
use Socket;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep sleep);
use VproxyTest::Cluster;
use VproxyTest::Dashboard;
use VproxyTest::ExternalWorker;

my $JSON = JSON::PP->new->canonical;
my $vp = VproxyTest::Cluster->start(workers => 0);
my $node = $vp->node;
my ($fake, $fake_dir) = VproxyTest::ExternalWorker::fake_transcode();
VproxyTest::ExternalWorker::create_role($vp, 'vproxy_worker');
VproxyTest::Dashboard::create_role($vp, 'vproxy_monitor');
# every statement of the monitor role reaches the server log: the queries counted below
$vp->sql("ALTER ROLE vproxy_monitor SET log_statement = 'all'");

# Set how long the fake child of a video runs and how it exits.
sub control
{
	my ($video, $seconds, $exit) = @_;
	open my $fh, '>', "$fake_dir/control/$video" or die $!;
	print $fh "$seconds $exit\n";
	close $fh;
	return $video;
}

# --- the role: refused without the grants, warned when it could write
$vp->sql('CREATE ROLE nobody LOGIN');
my $refused = VproxyTest::Dashboard->start($vp, role => 'nobody', wait => 0);
is($refused->wait_exit(30), 77, 'a role without the monitor grants: exit 77');
like($refused->log_text, qr/event=not_allowed role=nobody note=".*pg_monitor/, 'the log names the grants it needs');
my $superuser = $vp->value('SELECT current_user');
my $mighty = VproxyTest::Dashboard->start($vp, role => $superuser);
like($mighty->log_text, qr/level=warning event=role_can_write role=\Q$superuser\E/,
	'a role that could write the queue is warned about');
is($mighty->stop, 0, 'SIGTERM: exit 0');
my $nowhere = VproxyTest::Dashboard->start($vp, wait => 0,
	conninfo => 'host=127.0.0.1 port=' . PostgreSQL::Test::Cluster::get_free_port() . ' dbname=vproxy connect_timeout=2');
is($nowhere->wait_exit(30), 69, 'no server to connect to: exit 69');

# --- the token
my $token = join('', map { sprintf '%02x', int rand 256 } 1 .. 24);
my $d = VproxyTest::Dashboard->start($vp, token => $token);
for my $path (qw(/ /api/summary /api/workers /api/jobs /metrics /events /media))
{
	is($d->get($path)->{status}, 401, "$path without the token: 401");
}
is($d->get('/metrics', token => 'x' . $token)->{status}, 401, 'a wrong token: 401');
is($d->get('/metrics', token => substr($token, 0, -1))->{status}, 401, 'a prefix of the token: 401');
like($d->get('/metrics')->{headers}{'www-authenticate'}, qr/^Bearer /, 'WWW-Authenticate: Bearer');
is($d->get('/metrics', token => $token)->{status}, 200, 'the token: 200');
my $login_page = $d->get('/', headers => { Accept => 'text/html' });
is($login_page->{status}, 401, 'a browser without the cookie: 401 ...');
like($login_page->{content}, qr{<form method="post" action="/login">}, '... with the login form');
unlike($login_page->{content}, qr/<script/, 'which has no script');
is($d->get('/assets/style.css')->{status}, 200, 'the login form\'s stylesheet needs no token');
my $wrong = $d->post_form('/login', { token => 'guess' });
is($wrong->{status}, 303, 'a wrong login: 303 ...');
is($wrong->{headers}{location}, '/#wrong-token', '... back to the form, saying so');
ok(!$wrong->{headers}{'set-cookie'}, '... and no cookie');
my $login = $d->post_form('/login', { token => $token });
is("$login->{status} $login->{headers}{location}", '303 /', 'the right token logs in');
my $set_cookie = $login->{headers}{'set-cookie'} // '';
like($set_cookie, qr/; HttpOnly/, 'the cookie is HttpOnly');
like($set_cookie, qr/; SameSite=Strict/, 'and SameSite=Strict');
unlike($set_cookie, qr/\Q$token\E/, 'and does not hold the token');
my ($cookie) = $set_cookie =~ /^([^;]+)/;
is($d->get('/api/summary', cookie => $cookie)->{status}, 200, 'the cookie opens the API');
is($d->get('/', cookie => $cookie)->{status}, 200, 'and the page');
my $page = $d->get('/', cookie => $cookie);
my $csp = $page->{headers}{'content-security-policy'} // '';
like($csp, qr/script-src 'self'/, 'CSP: scripts from this origin only');
unlike($csp, qr/unsafe-inline|unsafe-eval/, 'never inline or eval');
unlike($page->{content}, qr/<script>|<script [^>]*>[^<]/, 'the page has no inline script');
is($d->get('/api/summary', cookie => 'vproxy_dashboard_session=' . ('0' x 64))->{status}, 401,
	'a forged cookie: 401');
my $logout = $d->post_form('/logout', {});
like($logout->{headers}{'set-cookie'} // '', qr/Max-Age=0/, 'logging out clears the cookie');

# --- a queue: completed, failed and waiting jobs
my %env = (FAKE_TRANSCODE_DIR => $fake_dir);
my $w = VproxyTest::ExternalWorker->start($vp, name => 'alpha', transcode => $fake, env => \%env,
	args => [ '--job-types', 'proxy_generation,metadata_extraction', '--concurrency', 2 ]);
ok($w->wait_for_log(qr/event=worker_start worker=alpha/), 'a worker serves the queue');
my @done = map { $vp->add_video(key => "uploads/m1/ok$_.mp4") } 1 .. 6;
control($_, 0.1 + rand(0.6), 0) for @done;
my @done_jobs = (map({ $vp->enqueue($_) } @done[0 .. 3]),
	map { $vp->enqueue($_, job_type => 'metadata_extraction') } @done[4 .. 5]);
my $bad = control($vp->add_video(key => 'uploads/m2/bad.mp4', mall_id => 'm2'), 0.1, 65);
my $bad_job = $vp->enqueue($bad);
# a job that fails every attempt with a transient error: three failed attempts
my $flaky = control($vp->add_video(key => 'uploads/m2/flaky.mp4', mall_id => 'm2'), 0.1, 75);
my $flaky_job = $vp->enqueue($flaky);
# thumbnails are not served: they wait
my @waiting = map { $vp->enqueue($vp->add_video(key => "uploads/m3/w$_.mp4", mall_id => 'm3'),
		job_type => 'thumbnail_generation') } 1 .. 3;
$vp->wait_for_job($_, timeout => 60) for @done_jobs, $bad_job, $flaky_job;
is($vp->job($bad_job)->{status}, 'failed', 'the bad upload failed');
is(scalar @{ $vp->job($flaky_job)->{attempt_errors} }, 3, 'the flaky one after three failed attempts');

# --- /metrics through the reference parser equals the table
my %table = map { my ($type, $status, $n) = split /\|/; ("$status $type" => $n) }
  split /\n/, $vp->sql('SELECT job_type, status, count(*) FROM vproxy.processing_jobs GROUP BY 1, 2');
my (@samples, %exposed, $fetched_at);
# a snapshot may be a second old (or ten times its query's time): until it has aged out
for (1 .. 50)
{
	$fetched_at = time;
	@samples = $d->metrics(token => $token);
	%exposed = map { ("$_->{labels}{status} $_->{labels}{job_type}" => $_->{value}) }
	  grep { $_->{name} eq 'vproxy_jobs' } @samples;
	last if $JSON->encode(\%exposed) eq $JSON->encode(\%table);
	sleep(0.2);
}
is_deeply(\%exposed, \%table, 'vproxy_jobs{status,job_type} equals the table\'s counts');
my %bounds;
for my $s (grep { $_->{name} eq 'vproxy_job_duration_seconds_bucket' } @samples)
{
	$bounds{ $s->{labels}{job_type} }{ $s->{labels}{le} } = $s->{value};
}
for my $type (qw(proxy_generation metadata_extraction))
{
	my ($count, $sum) = split /\|/, $vp->sql(
		"SELECT count(*), sum(extract(epoch FROM completed_at - started_at)) FROM vproxy.processing_jobs
		  WHERE status = 'completed' AND job_type = '$type'");
	is(VproxyTest::Dashboard::sample(\@samples, 'vproxy_job_duration_seconds_count', job_type => $type),
		$count, "$type: histogram count = completed jobs ($count)");
	ok(abs(VproxyTest::Dashboard::sample(\@samples, 'vproxy_job_duration_seconds_sum', job_type => $type) - $sum) < 1e-3,
		"$type: histogram sum = their run time ($sum s)");
	my @wrong;
	for my $le (keys %{ $bounds{$type} })
	{
		my $expected = $le eq '+Inf' ? $count : $vp->value(
			"SELECT count(*) FROM vproxy.processing_jobs WHERE status = 'completed' AND job_type = '$type'
			    AND extract(epoch FROM completed_at - started_at) <= $le");
		push @wrong, "le=$le: $bounds{$type}{$le} (table: $expected)" if $bounds{$type}{$le} != $expected;
	}
	is("@wrong", '', "$type: every bucket counts the jobs at most that long");
}
my $age = VproxyTest::Dashboard::sample(\@samples, 'vproxy_dashboard_data_age_seconds', view => 'summary');
my $oldest = $fetched_at - $age
  - $vp->value("SELECT extract(epoch FROM min(run_at)) FROM vproxy.processing_jobs WHERE status = 'pending'");
my $exposed_oldest = VproxyTest::Dashboard::sample(\@samples, 'vproxy_queue_oldest_pending_seconds');
ok(abs($exposed_oldest - $oldest) < 1, "vproxy_queue_oldest_pending_seconds $exposed_oldest ~ $oldest (the snapshot is $age s old)");
is(VproxyTest::Dashboard::sample(\@samples, 'vproxy_workers', kind => 'external'), 1, 'vproxy_workers{kind="external"} 1');
is(VproxyTest::Dashboard::sample(\@samples, 'vproxy_workers', kind => 'in-server'), 0, 'vproxy_workers{kind="in-server"} 0');
my %failed_table = map { my ($type, $code, $n) = split /\|/; ("$type $code" => $n) }
  split /\n/, $vp->sql("SELECT job_type, coalesce(error_code, ''), count(*) FROM vproxy.processing_jobs WHERE status = 'failed' GROUP BY 1, 2");
my %failed_exposed = map { ("$_->{labels}{job_type} $_->{labels}{error_code}" => $_->{value}) }
  grep { $_->{name} eq 'vproxy_job_failures' } @samples;
is_deeply(\%failed_exposed, \%failed_table, 'vproxy_job_failures{job_type,error_code} equals the table\'s failed jobs');
ok($failed_table{'proxy_generation bad_media'}, 'among them bad_media');
my %attempts_table = map { my ($type, $code, $n) = split /\|/; ("$type $code" => $n) }
  split /\n/, $vp->sql("SELECT j.job_type, e ->> 'code', count(*) FROM vproxy.processing_jobs j,
	jsonb_array_elements(j.attempt_errors) e GROUP BY 1, 2");
my %attempts_exposed = map { ("$_->{labels}{job_type} $_->{labels}{error_code}" => $_->{value}) }
  grep { $_->{name} eq 'vproxy_job_attempt_failures' } @samples;
is_deeply(\%attempts_exposed, \%attempts_table, 'vproxy_job_attempt_failures{job_type,error_code} equals the attempts the table records');
is($attempts_table{'proxy_generation storage_unavailable'}, 3, 'the flaky job\'s three among them');

# --- the page's JSON
my $summary = $d->json('/api/summary', token => $token);
my ($failure) = grep { $_->{job_id} eq $bad_job } @{ $summary->{recent_failures} };
like($failure->{error_message} // '', qr/fake failure with status 65/, 'recent failures carry the cause');
is($summary->{oldest_pending}{job_id}, $waiting[0], 'the oldest waiting job');
is(scalar @{ $summary->{history} [0]{pending} }, 61, 'the history has 61 points');
my ($thumbs) = grep { $_->{job_type} eq 'thumbnail_generation' } @{ $summary->{history} };
is($thumbs->{pending}[-1], 3, 'whose last point counts the waiting jobs');
my $list = $d->json('/api/jobs?status=failed', token => $token);
is_deeply([ sort map { $_->{id} } @{ $list->{jobs} } ], [ sort $bad_job, $flaky_job ], 'the job list filters by status');
$list = $d->json('/api/jobs?tenant=m3', token => $token);
is(scalar @{ $list->{jobs} }, 3, 'and by tenant');
# keyset paging: pages of 50 in created_at order, no job twice, none missed
$vp->sql("INSERT INTO vproxy.videos (mall_id, original_path) SELECT 'm9', 'uploads/m9/p' || i FROM generate_series(1, 120) i");
$vp->sql("INSERT INTO vproxy.processing_jobs (video_id, job_type) SELECT id, 'thumbnail_generation' FROM vproxy.videos WHERE mall_id = 'm9'");
my (@seen, $before);
for my $n (1 .. 5)
{
	my $page = $d->json('/api/jobs?tenant=m9' . ($before ? "&before=$before" : ''), token => $token);
	push @seen, map { $_->{id} } @{ $page->{jobs} };
	last unless $page->{more};
	my $last = $page->{jobs}[-1];
	$before = "$last->{cursor_us}_$last->{id}";
}
my $all = $vp->sql("SELECT string_agg(j.id::text, ' ' ORDER BY j.created_at DESC, j.id DESC)
	FROM vproxy.processing_jobs j JOIN vproxy.videos v ON v.id = j.video_id WHERE v.mall_id = 'm9'");
is("@seen", $all, 'keyset paging walks all 120 jobs newest first, each once');
is($d->get('/api/jobs?status=nonsense', token => $token)->{status}, 400, 'an unknown status: 400');
is($d->get('/api/jobs?before=1_x', token => $token)->{status}, 400, 'a malformed cursor: 400');
is($d->get('/api/job/not-a-uuid', token => $token)->{status}, 404, 'a malformed job id: 404');
is($d->get('/api/job/00000000-0000-0000-0000-000000000000', token => $token)->{status}, 404, 'no such job: 404');
my $job_view = $d->json("/api/job/$done_jobs[0]", token => $token);
is($job_view->{job}{id}, $done_jobs[0], 'a job\'s page');
ok(!exists $job_view->{job}{lease_token}, 'without the lease token');
my $flaky_view = $d->json("/api/job/$flaky_job", token => $token);
is_deeply([ map { "$_->{attempt} $_->{code}" } @{ $flaky_view->{job}{attempt_errors} } ],
	[ '1 storage_unavailable', '2 storage_unavailable', '3 storage_unavailable' ], 'every attempt with its error');
is($flaky_view->{job}{error_code}, 'storage_unavailable', 'and the job\'s error code');
# the segments of a split proxy: on their parent's page, out of the list
$vp->sql("INSERT INTO vproxy.processing_jobs (video_id, job_type, parent_job_id, params)
	SELECT video_id, 'proxy_segment', id, jsonb_build_object('index', i) FROM vproxy.processing_jobs, generate_series(0, 2) i
	 WHERE id = '$done_jobs[0]'");
my $parent = $d->json("/api/job/$done_jobs[0]", token => $token);
for (1 .. 30)
{
	last if @{ $parent->{segments} // [] } == 3;
	sleep(0.2);
	$parent = $d->json("/api/job/$done_jobs[0]", token => $token);
}
is_deeply([ map { $_->{params}{index} } @{ $parent->{segments} } ], [ 0, 1, 2 ], 'a split proxy\'s page lists its segments');
ok(!grep({ $_->{job_type} eq 'proxy_segment' } @{ $d->json('/api/jobs?tenant=m1', token => $token)->{jobs} }),
	'the job list leaves segments out');
my @segments;
for (1 .. 30)
{
	@segments = @{ $d->json('/api/jobs?type=proxy_segment', token => $token)->{jobs} };
	last if @segments == 3;
	sleep(0.2);
}
is(scalar @segments, 3, 'unless asked for by type');
is($segments[0]{parent_job_id}, $done_jobs[0], 'each with its parent');

# --- media: signed links, Range, nothing outside the storage directory
my $video = $job_view->{video};
my $storage = $vp->storage_dir;
make_path("$storage/videos/m1/proxy");
my $bytes = join('', map { chr(($_ * 7) % 256) } 0 .. 999);
open my $fh, '>:raw', "$storage/$video->{proxy_path}" or die $!;
print $fh $bytes;
close $fh;
my $link = $job_view->{media}{proxy};
like($link, qr{^/media\?key=videos/m1/proxy/\Q$video->{id}\E\.mp4&expires=\d+&signature=[0-9a-f]{64}$},
	'the proxy link is signed');
is($d->get($link)->{status}, 401, 'a media link needs the token too');
my $r = $d->get($link, token => $token);
is("$r->{status} " . length($r->{content}), '200 1000', 'the whole proxy');
ok($r->{content} eq $bytes, 'byte for byte');
is($r->{headers}{'content-type'}, 'video/mp4', 'as video/mp4');
$r = $d->get($link, token => $token, headers => { Range => 'bytes=10-19' });
is("$r->{status} $r->{headers}{'content-range'}", '206 bytes 10-19/1000', 'a range: 206');
ok($r->{content} eq substr($bytes, 10, 10), 'with those bytes');
$r = $d->get($link, token => $token, headers => { Range => 'bytes=-5' });
ok($r->{status} == 206 && $r->{content} eq substr($bytes, -5), 'the last bytes');
$r = $d->get($link, token => $token, headers => { Range => 'bytes=2000-' });
is("$r->{status} $r->{headers}{'content-range'}", '416 bytes */1000', 'past the end: 416');
(my $forged = $link) =~ s/key=[^&]+/key=videos\/m1\/..\/..\/..\/..\/etc\/passwd/;
is($d->get($forged, token => $token)->{status}, 403, 'another key under the same signature: 403');
(my $tampered = $link) =~ s/signature=(.)/'signature=' . ($1 eq 'a' ? 'b' : 'a')/e;
is($d->get($tampered, token => $token)->{status}, 403, 'a tampered signature: 403');
unlink "$storage/$video->{proxy_path}";
symlink('/etc/passwd', "$storage/$video->{proxy_path}") or die $!;
is($d->get($link, token => $token)->{status}, 404, 'a symbolic link in the store is not followed');

# --- /events: a job's end within a second, to every client, and progress
my @clients = map { $d->events(token => $token) } 1 .. 3;
is($clients[0]->status, 200, '/events: 200');
like($clients[0]->head, qr{Content-Type: text/event-stream}i, 'text/event-stream');
my $slow = control($vp->add_video(key => 'uploads/m1/slow.mp4'), 2, 0);
my $slow_job = $vp->enqueue($slow);
my $progress = $clients[0]->next_matching(sub { ($_[0]{event} // '') eq 'progress' && $_[0]{data} =~ /\Q$slow_job\E/
	  && $JSON->decode($_[0]{data})->{progress} > 0 }, 10);
ok($progress, 'progress events while the job runs');
my $end = $clients[0]->next_matching(sub { !defined $_[0]{event} && $_[0]{data} =~ /\Q$slow_job\E/ }, 15);
ok($end, 'the job\'s end arrives');
my $completed_at = $vp->value("SELECT extract(epoch FROM completed_at) FROM vproxy.processing_jobs WHERE id = '$slow_job'");
my $latency = $end ? $end->{at} - $completed_at : 99;
ok($latency < 1, sprintf('within a second of the finishing transaction (%.3f s)', $latency));
is_deeply($end ? $JSON->decode($end->{data}) : {},
	{ job_id => $slow_job, video_id => $slow, job_type => 'proxy_generation', status => 'completed' },
	'one data line: the NOTIFY payload');
my $after = $d->json("/api/summary?after_event=$end->{id}", token => $token);
is($vp->value("SELECT '$after->{generated_at}'::timestamptz >= completed_at FROM vproxy.processing_jobs WHERE id = '$slow_job'"),
	't', '?after_event= gives data taken after that event');
for my $i (1, 2)
{
	ok($clients[$i]->next_matching(sub { !defined $_[0]{event} && $_[0]{data} =~ /\Q$slow_job\E/ }, 5),
		"client $i got it too");
}
my $connections = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'vproxy-dashboard' AND usename = 'vproxy_monitor'";
is($vp->value($connections), 2, 'two connections to the database (reader and listener) for three clients');
# a client that reconnects with Last-Event-ID gets what it missed
my $missed_id = $end->{id};
my $other = $vp->enqueue(control($vp->add_video(key => 'uploads/m1/other.mp4'), 0.1, 0));
$vp->wait_for_job($other);
my $again = $d->events(token => $token, last_event_id => $missed_id);
ok($again->next_matching(sub { !defined $_[0]{event} && $_[0]{data} =~ /\Q$other\E/ }, 5),
	'a reconnecting client gets the events after its Last-Event-ID');
my $stranger = $d->events(token => $token, last_event_id => 'deadbeef-1');
is(($stranger->next(5) // {})->{event}, 'resync', 'an id of another run: resync first');
$_->finish for @clients, $again, $stranger;

# --- one query per second per view, however many clients
my $log_start = -s $node->logfile;
my $t0 = time;
my @kids;
for my $k (1 .. 8)
{
	my $pid = fork;
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		# (long enough for the reader thread to refresh the warm views)
		for (my $i = 0; $i < 40 || time - $t0 < 2.5; $i++)
		{
			$d->get('/api/summary', token => $token);
			$d->get('/metrics', token => $token);
			$d->get("/api/job/$done_jobs[1]", token => $token);
		}
		POSIX::_exit(0);
	}
	push @kids, $pid;
}
waitpid($_, 0) for @kids;
my $elapsed = time - $t0;
# the views stay fresh a while after their last request: count what came meanwhile
my $log = substr($vp->log_text, $log_start, (-s $node->logfile) - $log_start);
my $summary_queries = () = $log =~ /execute <unnamed>: WITH clock AS MATERIALIZED/g;
# (other jobs' views are still fresh from before: count the queries of this one)
my $job_queries = () = $log =~ /DETAIL:  parameters: \$1 = '$done_jobs[1]'/g;
my $allowed = int($elapsed) + 2;
ok($summary_queries >= 1 && $summary_queries <= $allowed,
	sprintf('summary and metrics requests of 8 clients in %.1f s: %d summary queries', $elapsed, $summary_queries));
ok($job_queries >= 1 && $job_queries <= $allowed, "requests of one job by 8 clients: $job_queries queries");

# --- a stalled or slow client stalls nobody
my $stalled = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $d->port) or die $!;
print $stalled "GET /metrics HTTP/1.1\r\nHost: x\r\n";    # and never the end of the head
my $deaf = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $d->port) or die $!;
setsockopt($deaf, Socket::SOL_SOCKET(), Socket::SO_RCVBUF(), 4096);
print $deaf "GET /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $token\r\n\r\n";    # never read
my $listener = $d->events(token => $token);
$vp->sql("SELECT pg_notify('vproxy_jobs', '{\"n\": ' || i || ', \"pad\": \"' || repeat('x', 7000) || '\"}')
	FROM generate_series(1, 1500) i");
my $last = $listener->next_matching(sub { ($_[0]{data} // '') =~ /"n": 1500,/ }, 20);
ok($last, 'an attentive client gets all 1500 events while another reads none');
my @took;
for (1 .. 10)
{
	my $start = time;
	$d->get('/metrics', token => $token);
	push @took, time - $start;
	sleep(0.1);
}
my ($worst) = sort { $b <=> $a } @took;
ok($worst < 0.5, sprintf('/metrics answers meanwhile (slowest of 10: %.3f s)', $worst));
is($vp->value($connections), 2, 'still two connections to the database');
close $stalled;
close $deaf;
$listener->finish;

# --- the database restarts: the stream says resync, the API comes back
my $watcher = $d->events(token => $token);
$node->restart;
# a restart on purpose: assert_no_crash compares with this start
$vp->{start_time} = $vp->postmaster_start_time;
ok($watcher->next_matching(sub { ($_[0]{event} // '') eq 'resync' }, 30), 'after a database restart: resync');
my $back = 0;
for (1 .. 100)
{
	$back = $d->get('/metrics', token => $token)->{status} == 200 and last;
	sleep(0.2);
}
ok($back, '/metrics answers again');
$watcher->finish;

# --- SIGTERM with a client connected: a clean stop
my $last_client = $d->events(token => $token);
is($d->stop, 0, 'SIGTERM with an /events client connected: exit 0');
like($d->log_text, qr/event=stopped/, 'it says so');
is($w->stop, 0, 'the worker stops');
$vp->assert_no_crash;
done_testing();
