# VproxyTest::Cluster: a throwaway PostgreSQL cluster with vproxy preloaded,
# its workers running in database "vproxy" on local-directory storage (or
# S3), and helpers to store originals, queue jobs, wait for them, listen to
# vproxy_jobs, find the workers' children and check that the server never
# crash-restarted.
#
#   my $vp = VproxyTest::Cluster->start(workers => 2, settings => {...});
#   my $video = $vp->add_video(file => $path, mall_id => 'm1');
#   my $job = $vp->enqueue($video);
#   my $row = $vp->wait_for_job($job);          # the job row, ended
#   $vp->assert_no_crash;
package VproxyTest::Cluster;

use strict;
use warnings;
use Carp;
use Digest::SHA;
use File::Copy qw(copy);
use File::Path qw(make_path);
use File::Basename qw(dirname basename);
use File::Spec;
use File::Temp ();
use JSON::PP;

# Outside prove (the benchmarks): find PostgreSQL's TAP modules and binaries
# through pg_config, and keep the clusters in a temporary directory.
BEGIN
{
	my $pgxs = `pg_config --pgxs`;
	chomp $pgxs;
	unshift @INC, dirname($pgxs) . '/../test/perl' if $pgxs;
	$ENV{PG_REGRESS} //= dirname($pgxs) . '/../test/regress/pg_regress';
	my $bindir = `pg_config --bindir`;
	chomp $bindir;
	$ENV{PATH} = "$bindir:$ENV{PATH}" if $bindir && index($ENV{PATH}, $bindir) < 0;
	$ENV{TESTDIR} //= File::Temp::tempdir('vproxy-cluster-XXXXXX', TMPDIR => 1, CLEANUP => 1) unless $^C;
}
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VproxyTest::Media ();
use Time::HiRes qw(time usleep);

my $JSON = JSON::PP->new->canonical;

# Start a cluster.  Options: workers (2), settings (hash of vproxy.* and
# other settings), storage ('file' or an S3 storage spec hash from
# VproxyTest::S3->storage_spec), name.
sub start
{
	my ($class, %opts) = @_;
	my $self = bless {}, $class;
	my $name = $opts{name} // 'vproxy';
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$self->{node} = $node;
	$self->{storage_dir} = PostgreSQL::Test::Utils::tempdir('vproxy-storage-XXXX');

	my %settings = (
		shared_preload_libraries => "'vproxy'",
		'vproxy.workers' => $opts{workers} // 2,
		'vproxy.database' => "'vproxy'",
		'vproxy.storage_url' => "'file://$self->{storage_dir}'",
		'vproxy.retry_delay' => '1',
		'vproxy.lease_duration' => '10',
		max_worker_processes => 16,
		log_line_prefix => "'%m [%p] %b '",
		track_commit_timestamp => 'on',
	);
	if ($ENV{VPROXY_TRANSCODE})
	{
		my $program = $ENV{VPROXY_TRANSCODE};
		$program = File::Spec->rel2abs($program) unless $program =~ m{^/};
		$settings{'vproxy.transcode_path'} = "'$program'";
	}
	if (ref $opts{storage} eq 'HASH')
	{
		my $s3 = $opts{storage};
		$settings{'vproxy.storage_url'} = "'$s3->{url}'";
		$settings{'vproxy.s3_endpoint'} = "'$s3->{s3_endpoint}'";
		$settings{'vproxy.s3_region'} = "'$s3->{s3_region}'";
		$settings{'vproxy.s3_access_key_id'} = "'$s3->{access_key_id}'";
		$settings{'vproxy.s3_secret_access_key'} = "'$s3->{secret_access_key}'";
	}
	%settings = (%settings, %{ $opts{settings} // {} });
	$node->append_conf('postgresql.conf',
		join('', map { "$_ = $settings{$_}\n" } sort keys %settings));
	$node->start;
	unless ($opts{no_database})
	{
		$node->safe_psql('postgres', 'CREATE DATABASE vproxy');
		$node->safe_psql('vproxy', 'CREATE EXTENSION vproxy');
	}
	$self->{start_time} = $self->postmaster_start_time;
	return $self;
}

sub node { return $_[0]{node} }
sub storage_dir { return $_[0]{storage_dir} }

# Run SQL in database vproxy and return its output (dies on error).
sub sql
{
	my ($self, $sql, $db) = @_;
	return $self->{node}->safe_psql($db // 'vproxy', $sql);
}

# One value of a query, or undef.
sub value
{
	my ($self, $sql) = @_;
	my $out = $self->sql($sql);
	return $out eq '' ? undef : $out;
}

sub postmaster_start_time
{
	my ($self) = @_;
	return $self->{node}->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');
}

# Copy a file into the storage directory at key; returns the key.
sub store_file
{
	my ($self, $file, $key) = @_;
	my $path = "$self->{storage_dir}/$key";
	make_path(dirname($path));
	copy($file, $path) or die "copy $file to $path: $!";
	return $key;
}

# Quote a string as an SQL literal.
sub quote
{
	my ($text) = @_;
	return 'NULL' unless defined $text;
	$text =~ s/'/''/g;
	return "'$text'";
}

# Insert a video row.  Options: file (stored under uploads/<mall>/<name>
# unless key or no_store is given), key, mall_id, pin_id, checksum (a
# string, 'auto' for the file's real SHA-256), size ('auto' for the real
# size).  Returns the video id.
sub add_video
{
	my ($self, %opts) = @_;
	my $mall = $opts{mall_id} // 'm1';
	my $file = $opts{file};
	my $key = $opts{key} // ('uploads/' . $mall . '/' . ($file ? basename($file) : 'missing.mp4'));
	$self->store_file($file, $key) if $file && !$opts{no_store};
	my $checksum = $opts{checksum};
	$checksum = Digest::SHA->new(256)->addfile($file)->hexdigest
	  if defined $checksum && $checksum eq 'auto';
	my $size = $opts{size};
	$size = -s $file if defined $size && $size eq 'auto';
	return $self->value(sprintf(
		"INSERT INTO vproxy.videos (mall_id, pin_id, filename, original_path, checksum_sha256, file_size_bytes)
		 VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
		quote($mall), quote($opts{pin_id}), quote($file ? basename($file) : undef), quote($key),
		quote($checksum), $size // 'NULL'));
}

# Queue a job; returns its id.
sub enqueue
{
	my ($self, $video, %opts) = @_;
	return $self->value(sprintf("SELECT vproxy.vproxy_enqueue(%s, %s, %d, %s)",
		quote($video), quote($opts{job_type} // 'proxy_generation'), $opts{priority} // 5,
		quote($JSON->encode($opts{params} // {}))));
}

# A row as a hash (columns of a table or view, WHERE clause given).
sub row
{
	my ($self, $from, $where) = @_;
	my $out = $self->value("SELECT row_to_json(r) FROM $from r WHERE $where");
	return defined $out ? $JSON->decode($out) : undef;
}

sub job { my ($self, $id) = @_; return $self->row('vproxy.processing_jobs', 'id = ' . quote($id)) }
sub video { my ($self, $id) = @_; return $self->row('vproxy.videos', 'id = ' . quote($id)) }

# Poll until the SQL condition is true (in database vproxy, or $db), every
# $poll seconds (0.05); false on timeout.
sub wait_until
{
	my ($self, $sql, $timeout, $db, $poll) = @_;
	my $deadline = time + ($timeout // $PostgreSQL::Test::Utils::timeout_default);
	while (time < $deadline)
	{
		my ($ret, $out) = $self->{node}->psql($db // 'vproxy', $sql);
		return 1 if $ret == 0 && $out eq 't';
		usleep(1_000_000 * ($poll // 0.05));
	}
	return 0;
}

# Wait until the job has ended (or reached one of the statuses given);
# options: statuses, timeout, poll (seconds between looks).  Returns its row.
sub wait_for_job
{
	my ($self, $job, %opts) = @_;
	my $statuses = join(', ', map { quote($_) } @{ $opts{statuses} // [qw(completed failed cancelled)] });
	$self->wait_until("SELECT status IN ($statuses) FROM vproxy.processing_jobs WHERE id = " . quote($job),
		$opts{timeout}, undef, $opts{poll})
	  or diag("job $job did not reach ($statuses): " . $JSON->encode($self->job($job) // {}));
	return $self->job($job);
}

# Wait until a worker runs the job and its child exists; returns (worker pid, child pid).
sub wait_for_child
{
	my ($self, $job, %opts) = @_;
	my $min_progress = $opts{min_progress} // 0;
	my $deadline = time + ($opts{timeout} // $PostgreSQL::Test::Utils::timeout_default);
	while (time < $deadline)
	{
		my ($ret, $worker) = $self->{node}->psql('vproxy',
			"SELECT pid FROM vproxy.workers WHERE job_id = " . quote($job)
			  . " AND state = 'running' AND progress >= $min_progress");
		if ($worker)
		{
			my @children = children_of($worker);
			return ($worker, $children[0]) if @children;
		}
		usleep(20_000);
	}
	return;
}

# The pids of a process's children.
sub children_of
{
	my ($pid) = @_;
	my @children;
	for my $stat (glob '/proc/[0-9]*/stat')
	{
		open my $fh, '<', $stat or next;
		my $line = <$fh> // next;
		close $fh;
		# pid (comm) state ppid ...: comm may hold spaces and parentheses
		push @children, $1 if $line =~ /^(\d+) \(.*\) \S+ (\d+) / && $2 == $pid;
	}
	return @children;
}

# Whether a process exists (and is not a zombie).
sub process_alive
{
	my ($pid) = @_;
	open my $fh, '<', "/proc/$pid/stat" or return 0;
	my $line = <$fh> // '';
	return $line !~ /^\d+ \(.*\) Z /;
}

# Whether the process is gone (or a zombie) within $seconds.
sub process_gone_within
{
	my ($pid, $seconds) = @_;
	my $deadline = time + $seconds;
	while (time < $deadline)
	{
		return 1 unless process_alive($pid);
		usleep(20_000);
	}
	return 0;
}

# A psql session that LISTENs on vproxy_jobs.
sub listen
{
	my ($self) = @_;
	my $session = $self->{node}->background_psql('vproxy');
	$session->query_safe('LISTEN vproxy_jobs');
	return $session;
}

# The payloads (decoded) a listening session has received so far.
sub notifications
{
	my ($self, $session) = @_;
	my $out = $session->query_safe('SELECT 1');
	my @payloads;
	push @payloads, $JSON->decode($1)
	  while $out =~ /Asynchronous notification "vproxy_jobs" with payload "(.*?)" received/g;
	return @payloads;
}

# The server log so far.
sub log_text
{
	my ($self) = @_;
	return slurp_file($self->{node}->logfile);
}

# Wait until the server log matches $regexp (looking from byte $offset on);
# false on timeout.
sub wait_for_log
{
	my ($self, $regexp, $timeout, $offset) = @_;
	my $deadline = time + ($timeout // $PostgreSQL::Test::Utils::timeout_default);
	while (time < $deadline)
	{
		return 1 if substr($self->log_text, $offset // 0) =~ $regexp;
		usleep(50_000);
	}
	return 0;
}

# The postmaster never crash-restarted: same start time, no crash in the log.
sub assert_no_crash
{
	my ($self) = @_;
	is($self->postmaster_start_time, $self->{start_time}, 'postmaster did not restart');
	my $log = $self->log_text;
	unlike($log, qr/terminating any other active server processes|was terminated by signal|server process .* exited with exit code [^01]/,
		'no crash-restart in the log');
}

# Check a completed proxy job against ffprobe of the original and of its
# outputs.  $fetch->($key) returns a local path of a stored object.
sub check_proxy_job
{
	my ($self, $job_id, $original, $fetch) = @_;
	my $job = $self->job($job_id);
	my $video = $self->video($job->{video_id});
	my $name = "$video->{filename} ($job_id)";
	my $probe = VproxyTest::Media::ffprobe_json($original);
	my $stream = VproxyTest::Media::video_stream($probe);

	is($job->{status}, 'completed', "$name: completed");
	is($job->{attempts}, 1, "$name: in one attempt");
	is($video->{processing_status}, 'completed', "$name: video completed");
	ok(defined $video->{processing_completed_at}, "$name: video completion time set");
	is($video->{width}, $stream->{width}, "$name: width as ffprobe");
	is($video->{height}, $stream->{height}, "$name: height as ffprobe");
	is($video->{codec}, $stream->{codec_name}, "$name: codec as ffprobe");
	ok(abs($video->{duration_seconds} - $probe->{format}{duration}) < 0.2,
		"$name: duration $video->{duration_seconds} as ffprobe $probe->{format}{duration}");
	is($video->{file_size_bytes}, -s $original, "$name: file size");
	is($video->{checksum_sha256}, Digest::SHA->new(256)->addfile($original)->hexdigest,
		"$name: checksum filled from the child's reading");
	is($video->{proxy_path}, "videos/$video->{mall_id}/proxy/$video->{id}.mp4", "$name: default proxy key");
	is($video->{thumbnail_path}, "thumbnails/$video->{mall_id}/$video->{id}.jpg", "$name: default thumbnail key");

	my $result = $job->{result_data};
	# a split proxy also says in how many segments it was made
	is_deeply([ sort grep { $_ ne 'segments' } keys %$result ], [qw(metadata proxy_path status thumbnail_path)],
		"$name: result_data keys");
	is($result->{status}, 'success', "$name: result status");
	is($result->{proxy_path}, $video->{proxy_path}, "$name: result proxy_path");
	for my $part (qw(original proxy))
	{
		my @missing = grep { !exists $result->{metadata}{$part}{$_} }
		  qw(width height fps duration_seconds codec bitrate file_size_bytes);
		is("@missing", '', "$name: metadata.$part has every documented field");
	}
	my @missing = grep { !exists $result->{metadata}{thumbnail}{$_} }
	  qw(width height file_size_bytes timestamp_seconds);
	is("@missing", '', "$name: metadata.thumbnail has every documented field");

	my $proxy = $fetch->($video->{proxy_path});
	my $proxy_probe = VproxyTest::Media::ffprobe_json($proxy);
	my $proxy_stream = VproxyTest::Media::video_stream($proxy_probe);
	my ($w, $h) = VproxyTest::Media::expected_proxy_size($stream);
	is("$proxy_stream->{codec_name} $proxy_stream->{width}x$proxy_stream->{height}", "h264 ${w}x$h",
		"$name: proxy is H.264 at the expected size");
	is($result->{metadata}{proxy}{file_size_bytes}, -s $proxy, "$name: proxy size in result_data");
	my $thumb = $fetch->($video->{thumbnail_path});
	my $thumb_stream = VproxyTest::Media::ffprobe_json($thumb)->{streams}[0];
	is($thumb_stream->{codec_name}, 'mjpeg', "$name: thumbnail is a JPEG");
	is($thumb_stream->{width}, $result->{metadata}{thumbnail}{width}, "$name: thumbnail width in result_data");
	return;
}

# Print to the real standard output (PostgreSQL::Test::Utils sends STDOUT to
# its log file): for the benchmarks' results.
sub report
{
	my $out = Test::More->builder->output;
	print $out @_;
	return;
}

# A video clip made with the ffmpeg CLI: testsrc2 of the given size, rate
# and length with a tone, H.264/AAC in MP4.
sub make_clip
{
	my ($path, %opts) = @_;
	my $size = $opts{size} // '640x360';
	my $rate = $opts{rate} // 30;
	my $seconds = $opts{seconds} // 10;
	my @cmd = ('ffmpeg', qw(-nostdin -hide_banner -loglevel error -y -f lavfi -i),
		"testsrc2=size=$size:rate=$rate", '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
		'-t', $seconds, qw(-c:v libx264 -preset ultrafast -c:a aac -ac 2 -pix_fmt yuv420p), $path);
	system(@cmd) == 0 or die "ffmpeg failed: @cmd";
	return $path;
}

1;
