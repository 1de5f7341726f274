# vproxy-transcode on real-world uploads (issue 23), each against the ffmpeg
# CLI: probe describes the stream a player plays, the proxy lasts as long
# and has as many frames as the CLI's (within a frame), and thumbnails at
# several times are the CLI's frame at that time (decoded from the start,
# timestamps as the CLI re-bases them).
use strict;
use warnings;
use Test::More;
use POSIX qw(floor);
use VproxyTest::Media;

plan skip_all => 'ffmpeg/ffprobe not installed' unless have_program('ffmpeg') && have_program('ffprobe');

my $dir = scratch_dir();
my $DEINTERLACE = 'bwdif=mode=send_frame:parity=auto:deint=interlaced';

# The CLI's proxy of the stream a player plays: our proxy's filters but for
# deinterlacing and the scaler (they change no timestamp).
sub cli_proxy
{
	my ($path, $index, $out) = @_;
	VproxyTest::Media::ffmpeg('-i', $path, '-map', "0:$index", '-map', '0:a:0?', '-vf', 'scale=-2:480,fps=10:start_time=0',
		qw(-c:v libx264 -preset ultrafast -crf 28 -c:a aac -b:a 64k), $out);
}

# The CLI's frame at $at seconds, decoded from the start, at the thumbnail's
# size.  The audio is read too: where timestamps jump, the CLI re-bases on
# the streams it reads, and the thumbnail is the frame the proxy shows at
# that time.  Lossless, in a container that keeps the CLI's timestamps (an
# image muxer has it time the frames otherwise).
sub cli_frame
{
	my ($path, $index, $at, $size, $deinterlace, $out) = @_;
	my @filters = ($deinterlace ? ($DEINTERLACE) : (), "select=gte(t\\,$at)", "scale=$size:flags=bicubic");
	VproxyTest::Media::ffmpeg('-i', $path, '-map', "0:$index", '-map', '0:a:0?', '-vf', join(',', @filters),
		qw(-frames:v 1 -c:v ffv1 -c:a pcm_s16le -f nut), $out);
}

# A video stream's frame count and end, and the file's duration, as ffprobe sees them.
sub video_summary
{
	my ($path) = @_;
	my $probe = ffprobe_json($path);
	my $video = video_stream($probe);
	return ($video->{nb_frames}, ($video->{start_time} // 0) + $video->{duration}, $probe->{format}{duration});
}

for my $name (upload_names())
{
	my $path = upload_fixture($name);
	my ($description, $expect) = upload_info($name);
	my $video = video_stream(ffprobe_json($path));
	note "$name: $description";

	my $probe = run_transcode('probe', $path);
	is($probe->{status}, 0, "$name: probe succeeds") or diag $probe->{stderr};
	is(sanitizer_report($probe), '', "$name: no sanitizer report from probe");
	my $info = $probe->{json} // {};
	for my $key (grep { $_ ne 'times' && $_ ne 'deinterlace' } sort keys %$expect)
	{
		is($info->{$key}, $expect->{$key}, "$name: $key is $expect->{$key}");
	}

	my $proxy = "$dir/$name.mp4";
	my $result = run_transcode('proxy', $path, $proxy);
	is($result->{status}, 0, "$name: proxy made") or diag $result->{stderr};
	is(sanitizer_report($result), '', "$name: no sanitizer report from proxy");
	cli_proxy($path, $video->{index}, "$dir/$name.cli.mp4");
	my ($frames, $end, $duration) = video_summary($proxy);
	my ($cli_frames, $cli_end, $cli_duration) = video_summary("$dir/$name.cli.mp4");
	cmp_ok(abs($frames - $cli_frames), '<=', 1, "$name: $frames proxy frames, the CLI's $cli_frames");
	cmp_ok(abs($end - $cli_end), '<=', 0.1 + 1e-6, "$name: the picture ends at $end s, the CLI's at $cli_end s");
	cmp_ok(abs($duration - $cli_duration), '<=', 0.1 + 1e-6, "$name: the proxy lasts $duration s, the CLI's $cli_duration s");
	cmp_ok(abs(($info->{duration_seconds} // 0) - $cli_duration), '<=', 0.1 + 1e-6,
		"$name: probe says $info->{duration_seconds} s, the CLI's proxy lasts $cli_duration s");

	my $default = ($info->{duration_seconds} // 0) > 5 ? 5 : ($info->{duration_seconds} // 0) / 2;
	for my $at (undef, @{ $expect->{times} })
	{
		my $when = $at // "the default time ($default s)";
		my $out = "$dir/$name-" . ($at // 'default') . '.jpg';
		my $thumbnail = run_transcode('thumbnail', $path, $out, defined $at ? ('--at', $at) : ());
		is($thumbnail->{status}, 0, "$name: thumbnail at $when") or diag $thumbnail->{stderr};
		is(sanitizer_report($thumbnail), '', "$name: no sanitizer report from the thumbnail at $when");
		my $json = $thumbnail->{json} or next;
		cli_frame($path, $video->{index}, $json->{timestamp_seconds}, "$json->{width}:$json->{height}",
			$expect->{deinterlace}, "$out.cli.nut");
		my $psnr = psnr($out, "$out.cli.nut");
		cmp_ok($psnr, '>', 35, "$name: at $when the CLI's frame ($psnr dB)");
	}
}

done_testing();
