# vproxy-transcode on bad and hostile input: each command refuses it with the
# documented exit status and a cause in words, leaves no file behind, and a
# stop request ends a proxy cleanly with exit 75.
use strict;
use warnings;
use Test::More;
use VproxyTest::Media;

plan skip_all => 'ffmpeg/ffprobe not installed' unless have_program('ffmpeg') && have_program('ffprobe');

# The names in a directory.
sub listing
{
	my ($dir) = @_;
	opendir my $dh, $dir or die "$dir: $!";
	return [sort grep { !/^\.\.?$/ } readdir $dh];
}

for my $name (bad_input_names())
{
	my ($path, $status) = bad_input($name);
	for my $command (qw(proxy thumbnail))
	{
		my $outdir = scratch_dir();
		my $ext = $command eq 'proxy' ? 'mp4' : 'jpg';
		my $result = run_transcode($command, $path, "$outdir/out.$ext");
		is($result->{status}, $status, "$command of $name: exit $status");
		like($result->{last_error}, qr/^vproxy-transcode: \w.{8,}/, "$command of $name: the cause in words");
		is_deeply(listing($outdir), [], "$command of $name: nothing left behind");
		is(sanitizer_report($result), '', "$command of $name: no sanitizer report");
	}
}

# a missing input is 66 for every command
for my $command (qw(probe proxy thumbnail))
{
	my $outdir = scratch_dir();
	my @args = $command eq 'probe' ? () : ("$outdir/out");
	my $result = run_transcode($command, "$outdir/missing.mp4", @args);
	is($result->{status}, 66, "$command of a missing file: exit 66");
	is_deeply(listing($outdir), [], "$command of a missing file: nothing left behind");
}

# a directory is not an input
is(run_transcode('probe', scratch_dir())->{status}, 65, 'a directory: exit 65');

# an output folder that does not exist: an internal failure, not bad media
{
	my $outdir = scratch_dir();
	my $result = run_transcode('proxy', fixture('three_frames'), "$outdir/no/such/dir/out.mp4");
	is($result->{status}, 70, 'output folder missing: exit 70');
	like($result->{last_error}, qr/cannot create/, 'output folder missing: says so');
}

# a stop request (SIGTERM) during a proxy: exit 75, nothing left behind
for my $signal (qw(TERM INT))
{
	my $outdir = scratch_dir();
	my $sent = 0;
	my $result = run_transcode(
		{
			on_progress => sub {
				my ($line, $pid) = @_;
				kill $signal, $pid if !$sent++ && $line =~ /^progress /;
			}
		},
		'proxy', fixture('phone_rotated'), "$outdir/out.mp4", '--preset', 'veryslow');
	ok($sent, "SIG$signal sent while the proxy was running");
	is($result->{status}, 75, "SIG$signal: exit 75");
	like($result->{last_error}, qr/stopped/, "SIG$signal: says it was stopped");
	is_deeply(listing($outdir), [], "SIG$signal: nothing left behind");
}

# a successful run leaves exactly the output
{
	my $outdir = scratch_dir();
	is(run_transcode('proxy', fixture('three_frames'), "$outdir/p.mp4")->{status}, 0, 'proxy of three frames');
	is(run_transcode('thumbnail', fixture('three_frames'), "$outdir/t.jpg")->{status}, 0, 'thumbnail of three frames');
	is_deeply(listing($outdir), ['p.mp4', 't.jpg'], 'only the outputs are left');
}

# an existing output is replaced whole
{
	my $outdir = scratch_dir();
	open my $fh, '>', "$outdir/p.mp4" or die;
	print $fh 'old content';
	close $fh;
	is(run_transcode('proxy', fixture('three_frames'), "$outdir/p.mp4")->{status}, 0, 'proxy over an old file');
	is((top_level_boxes("$outdir/p.mp4"))[0], 'ftyp', 'the old file was replaced');
}

done_testing();
