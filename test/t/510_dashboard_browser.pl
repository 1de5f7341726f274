# vproxy-dashboard in a real browser (Debian's headless chromium through
# test/browser): the login form, a failed upload and its cause, a file name
# full of HTML shown as text and never run, a job that ends while its page
# is open (the page updates without a reload), the proxy of a real
# transcode playing in <video> with its thumbnail, no console error and no
# CSP violation.  The queue is served by two vproxy-workers: the real
# vproxy-transcode for proxies, the fake one (timed by the test) for the
# other types.  Set DASHBOARD_SCREENSHOT=/path.png to keep the overview's
# screenshot and the job page's beside it (/path-job.png): the README's.
use strict;
use warnings;
use File::Copy qw(copy);
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use VproxyTest::Cluster;
use VproxyTest::Dashboard;
use VproxyTest::ExternalWorker;
use VproxyTest::Media qw(bad_input);

my $vp = VproxyTest::Cluster->start(workers => 0);
my ($fake, $fake_dir) = VproxyTest::ExternalWorker::fake_transcode();
VproxyTest::ExternalWorker::create_role($vp, 'vproxy_worker');
VproxyTest::Dashboard::create_role($vp, 'vproxy_monitor');
my $real = VproxyTest::ExternalWorker->start($vp, name => 'transcoder',
	args => [ '--job-types', 'proxy_generation' ]);
my $quick = VproxyTest::ExternalWorker->start($vp, name => 'probe-1', transcode => $fake,
	env => { FAKE_TRANSCODE_DIR => $fake_dir },
	args => [ '--job-types', 'metadata_extraction,thumbnail_generation', '--concurrency', 2 ]);
ok($real->wait_for_log(qr/event=worker_start/) && $quick->wait_for_log(qr/event=worker_start/),
	'two workers serve the queue');

# Set how long the fake child of a video runs and how it exits.
sub control
{
	my ($video, $seconds, $exit) = @_;
	open my $fh, '>', "$fake_dir/control/$video" or die $!;
	print $fh "$seconds $exit\n";
	close $fh;
	return $video;
}

# A video row of tenant $mall named $name (no file: for the fake transcode).
sub named_video
{
	my ($mall, $name) = @_;
	my $video = $vp->add_video(key => "uploads/$mall/$name", mall_id => $mall);
	$vp->sql("UPDATE vproxy.videos SET filename = '$name' WHERE id = '$video'");
	return $video;
}

# --- the queue: a real proxy of a video named with HTML, a failed upload
my $html_name = q{<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>&amp; "quoted" 'single'.mp4};
my $clip = VproxyTest::Cluster::make_clip(PostgreSQL::Test::Utils::tempdir() . '/clip.mp4',
	size => '320x240', seconds => 3);
my $html_video = $vp->add_video(file => $clip, key => 'uploads/m1/html.mp4', mall_id => 'm1');
$vp->sql('UPDATE vproxy.videos SET filename = ' . VproxyTest::Cluster::quote($html_name)
	  . " WHERE id = '$html_video'");
my $html_job = $vp->enqueue($html_video);
my ($garbage) = bad_input('random_bytes');
my $bad_video = $vp->add_video(file => $garbage, key => 'uploads/m2/holiday.mp4', mall_id => 'm2');
$vp->sql("UPDATE vproxy.videos SET filename = 'holiday.mp4' WHERE id = '$bad_video'");
my $bad_job = $vp->enqueue($bad_video);
my @quick_jobs = map {
	$vp->enqueue(control(named_video('m3', "store-tour-$_.mov"), 0.5 + $_ / 4, 0),
		job_type => 'metadata_extraction')
} 1 .. 4;
is($vp->wait_for_job($html_job, timeout => 120)->{status}, 'completed', 'the real proxy is made');
my $bad = $vp->wait_for_job($bad_job, timeout => 60);
is($bad->{status}, 'failed', 'the garbage upload failed');
$vp->wait_for_job($_) for @quick_jobs;

# --- log in through the form
my $token = join('', map { sprintf '%02x', int rand 256 } 1 .. 24);
my $d = VproxyTest::Dashboard->start($vp, token => $token);
my $browser = VproxyTest::Dashboard::Browser->start;
my $url = $d->url;
is($browser->value({ cmd => 'goto', url => "$url/" }), 401, 'the page without logging in: 401');
ok($browser->ok({ cmd => 'wait', selector => 'form[action="/login"]' }), 'shows the login form');
$browser->ok({ cmd => 'fill', selector => '#token', value => 'not the token' });
$browser->ok({ cmd => 'click', selector => 'button[type=submit]', navigation => 1 });
ok($browser->ok({ cmd => 'wait', selector => '#wrong-token' }), 'a wrong token says so');
$browser->ok({ cmd => 'fill', selector => '#token', value => $token });
$browser->ok({ cmd => 'click', selector => 'button[type=submit]', navigation => 1 });
ok($browser->ok({ cmd => 'wait', selector => '#overview', timeout => 15000 }), 'the token logs in: the overview');
# the 401s before the login are the only console errors so far
$browser->do({ cmd => 'console', clear => 1 });
is($browser->value({ cmd => 'eval', expression => 'document.cookie' }), '', 'the session cookie is out of the scripts\' reach');
ok($browser->ok({ cmd => 'wait', selector => '#live', text => 'live' }), 'the page listens to /events');

# --- a failed upload and its cause
ok($browser->ok({ cmd => 'wait', selector => '#failures', text => 'holiday.mp4' }), 'recent failures show the failed upload');
my ($cause) = $bad->{error_message} =~ /^(.{1,40})/;
ok($browser->ok({ cmd => 'wait', selector => '#failures td.cause', text => $cause }), "with its cause: $bad->{error_message}");
is($bad->{error_code}, 'bad_media', 'the failure\'s error code is bad_media');
ok($browser->ok({ cmd => 'wait', selector => '#failures td.cause .code', text => 'bad_media' }), 'shown beside the cause');
ok($browser->ok({ cmd => 'wait', selector => '#causes', text => 'bad_media' }), 'and among the causes of the last hour');
$browser->ok({ cmd => 'goto', url => "$url/#/job/$bad_job" });
ok($browser->ok({ cmd => 'wait', selector => '#attempts td', text => 'bad_media' }), 'the job page lists the attempt with its code');
$browser->ok({ cmd => 'goto', url => "$url/#/" });
$browser->ok({ cmd => 'wait', selector => '#overview' });
ok($browser->ok({ cmd => 'wait', selector => '#durations', text => 'metadata_extraction' }), 'durations by type');

# --- a file name full of HTML is text
ok($browser->ok({ cmd => 'goto', url => "$url/#/jobs?tenant=m1" }), 'the job list of tenant m1');
ok($browser->ok({ cmd => 'wait', selector => '#jobs-table td.file', text => $html_name }), 'shows the name as written');
is($browser->value({ cmd => 'count', selector => '#jobs-table img, #jobs-table script' }), 0, 'no element came out of it');
$browser->ok({ cmd => 'goto', url => "$url/#/job/$html_job" });
$browser->ok({ cmd => 'wait', selector => '#job-file' });
is($browser->value({ cmd => 'text', selector => '#job-file' }), $html_name, 'the job\'s title is the name, as text');
is($browser->value({ cmd => 'eval', expression => 'typeof window.pwned' }), 'undefined', 'none of it ran');
is($browser->value({ cmd => 'count', selector => 'img[src="x"], main script' }), 0, 'nothing of it in the document');

# --- the proxy plays, the thumbnail shows
ok($browser->ok({ cmd => 'wait', selector => 'video#proxy' }), 'the job page has the proxy in <video>');
my $played = $browser->value({ cmd => 'eval', expression => q{(async () => {
	const v = document.getElementById('proxy');
	v.muted = true;
	await v.play();
	await new Promise((resolve) => setTimeout(resolve, 1500));
	return { time: v.currentTime, width: v.videoWidth, height: v.videoHeight, error: v.error && v.error.code };
})()} }) // {};
ok(($played->{time} // 0) > 0.5, "it plays (at $played->{time} s after 1.5 s)");
my $proxy_meta = $vp->job($html_job)->{result_data}{metadata}{proxy};
is("$played->{width}x$played->{height}", "$proxy_meta->{width}x$proxy_meta->{height}", 'at the proxy\'s size');
ok($browser->value({ cmd => 'eval', expression => q{(async () => {
	const img = document.getElementById('thumbnail');
	if (!img.complete) await new Promise((resolve) => img.addEventListener('load', resolve, { once: true }));
	return img.naturalWidth;
})()} }) > 0, 'the thumbnail shows');
ok($browser->ok({ cmd => 'wait', selector => '#metadata', text => 'duration_seconds' }), 'the metadata');
ok($browser->ok({ cmd => 'wait', selector => '#params' }), 'and the parameters');
if ($ENV{DASHBOARD_SCREENSHOT})
{
	(my $job_shot = $ENV{DASHBOARD_SCREENSHOT}) =~ s/(\.png)?$/-job.png/;
	ok($browser->value({ cmd => 'screenshot', path => $job_shot, full_page => 1 }), "the job's page: $job_shot");
}

# --- a job ends while its page is open: the page follows without a reload
my $live_video = control(named_video('m3', 'opening-day.mov'), 5, 0);
my $live_job = $vp->enqueue($live_video, job_type => 'metadata_extraction');
$vp->wait_until("SELECT status = 'running' FROM vproxy.processing_jobs WHERE id = '$live_job'");
$browser->ok({ cmd => 'goto', url => "$url/#/job/$live_job" });
ok($browser->ok({ cmd => 'wait', selector => '#job h1 .badge', text => 'running' }), 'the job page shows it running');
$browser->ok({ cmd => 'eval', expression => 'window.sameDocument = true' });
ok($browser->ok({ cmd => 'wait', selector => '#job .progress .bar-text', text => '%' }), 'with its progress');
ok($browser->ok({ cmd => 'wait', selector => '#job h1 .badge', text => 'completed', timeout => 15000 }),
	'then completed, by itself');
ok($browser->value({ cmd => 'eval', expression => 'window.sameDocument === true' }), 'without a reload');
is($vp->job($live_job)->{status}, 'completed', 'as the table says');

# --- the overview follows the queue too
$browser->ok({ cmd => 'goto', url => "$url/#/" });
$browser->ok({ cmd => 'wait', selector => '#overview' });
my @running = map {
	$vp->enqueue(control(named_video('m4', "escalator-cam-$_.mov"), 30, 0), job_type => 'thumbnail_generation')
} 1 .. 2;
ok($browser->ok({ cmd => 'wait', selector => '#workers-table', text => 'escalator-cam-2.mov', timeout => 10000 }),
	'the workers table shows the jobs that started, without a reload');
ok($browser->ok({ cmd => 'wait', selector => '#workers-table', text => 'probe-1' }), 'with the worker\'s name');
is_deeply($browser->value({ cmd => 'console' }), [], 'no console error, no CSP violation');

# --- the README's screenshot, with an hour of history (backdated rows: a
# burst of uploads that queued up and drained)
$vp->sql(q{
	INSERT INTO vproxy.videos (mall_id, filename, original_path, processing_status)
	SELECT 'm' || (i % 4 + 1), 'visit-' || i || '.mov', 'uploads/m' || (i % 4 + 1) || '/visit-' || i || '.mov', 'completed'
	  FROM generate_series(1, 300) i;
	INSERT INTO vproxy.processing_jobs (video_id, job_type, status, attempts, created_at, run_at,
										started_at, completed_at, progress, error_code, error_message,
										attempt_errors)
	SELECT v.id, t.job_type, CASE WHEN f.code IS NULL THEN 'completed' ELSE 'failed' END,
		   CASE WHEN r.code IS NULL THEN 1 ELSE 2 END,
		   c.created, c.created, c.created + c.wait, c.created + c.wait + t.took,
		   CASE WHEN f.code IS NULL THEN 1 ELSE 0 END, f.code, f.message,
		   CASE WHEN coalesce(r.code, f.code) IS NULL THEN '[]'::jsonb
				ELSE jsonb_build_array(jsonb_build_object('attempt', 1, 'at', c.created + c.wait + t.took,
					'code', coalesce(r.code, f.code), 'message', coalesce(r.message, f.message),
					'worker', 'vproxy-worker probe-1@vm')) END
	  FROM (SELECT v.id, row_number() OVER (ORDER BY v.filename) AS n FROM vproxy.videos v
			 WHERE v.filename LIKE 'visit-%') v
	 CROSS JOIN LATERAL (SELECT (ARRAY['proxy_generation', 'metadata_extraction', 'thumbnail_generation'])[1 + v.n % 3]
								AS job_type,
							   make_interval(secs => CASE v.n % 3 WHEN 0 THEN 20 + v.n % 50 ELSE 1 + v.n % 4 END)
								AS took) t
	 CROSS JOIN LATERAL (SELECT now() - interval '58 minutes' + v.n * interval '10 seconds' AS created,
							   make_interval(secs => 420 * (1 + sin(v.n / 30.0))) AS wait) c
	 -- one in 23 fails for good, one in 29 needed a second attempt
	 CROSS JOIN LATERAL (SELECT CASE WHEN v.n % 46 = 0 THEN 'timeout' WHEN v.n % 23 = 0 THEN 'bad_media' END AS code,
							   CASE WHEN v.n % 46 = 0 THEN 'timed out after 3600 s (vproxy.job_timeout)'
									WHEN v.n % 23 = 0 THEN 'moov atom not found: the upload was cut short' END
								AS message) f
	 CROSS JOIN LATERAL (SELECT CASE WHEN v.n % 29 = 0 AND f.code IS NULL THEN 'storage_unavailable' END AS code,
							   'S3 answered 503 SlowDown' AS message) r;
});
# the summary kept fresh (a second at most) has them: then the page
for (1 .. 100)
{
	last if grep { $_->{status} eq 'completed' && $_->{jobs} > 50 } @{ $d->json('/api/summary', token => $token)->{last_hour} };
	sleep(0.2);
}
$browser->ok({ cmd => 'goto', url => "$url/#/jobs" });
$browser->ok({ cmd => 'goto', url => "$url/#/" });
$browser->ok({ cmd => 'wait', selector => '#depth svg' });
my $shot = $ENV{DASHBOARD_SCREENSHOT} || "$ENV{TESTDIR}/tmp_check/dashboard.png";
sleep(1.5);
ok($browser->value({ cmd => 'screenshot', path => $shot }), "screenshot: $shot");

$browser->quit;
$vp->sql("SELECT vproxy.vproxy_cancel(id) FROM vproxy.processing_jobs WHERE status IN ('pending', 'running')");
is($d->stop, 0, 'the dashboard stops');
is($real->stop, 0, 'the workers stop');
is($quick->stop, 0, 'both');
$vp->assert_no_crash;
done_testing();
