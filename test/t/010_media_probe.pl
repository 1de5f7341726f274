# vproxy-transcode probe: every clip of the corpus described as ffprobe sees
# it, and every bad input refused with the right exit status and a cause.
use strict;
use warnings;
use Test::More;
use VproxyTest::Media;

plan skip_all => 'ffmpeg/ffprobe not installed' unless have_program('ffmpeg') && have_program('ffprobe');

my @contract_keys = qw(width height fps duration_seconds codec bitrate file_size_bytes);

for my $name (fixture_names())
{
	my $path = fixture($name);
	my $result = run_transcode('probe', $path);
	is($result->{status}, 0, "$name: probe succeeds") or diag $result->{stderr};
	is(sanitizer_report($result), '', "$name: no sanitizer report");
	my $info = $result->{json} or next;
	my $probe = ffprobe_json($path, '-show_entries', 'stream_side_data');
	my $video = video_stream($probe);

	ok(exists $info->{$_}, "$name: has $_") for @contract_keys;
	is($info->{width}, $video->{width}, "$name: width as stored");
	is($info->{height}, $video->{height}, "$name: height as stored");
	is($info->{codec}, $video->{codec_name}, "$name: codec");
	is($info->{pix_fmt}, $video->{pix_fmt}, "$name: pixel format");
	is($info->{file_size_bytes}, -s $path, "$name: file size");
	cmp_ok(abs($info->{duration_seconds} - $probe->{format}{duration}), '<', 0.01, "$name: duration");
	# derived from size and duration, which our bounded probing may estimate a hair differently
	cmp_ok(abs($info->{bitrate} - $probe->{format}{bit_rate}), '<=', 0.005 * $probe->{format}{bit_rate},
		"$name: container bit rate");
	my ($num, $den) = split m{/}, $video->{avg_frame_rate};
	($num, $den) = split m{/}, $video->{r_frame_rate} unless $den && $num;
	cmp_ok(abs($info->{fps} - $num / $den), '<', 0.001, "$name: average frame rate");
	my ($dw, $dh) = display_size($video);
	is("$info->{display_width}x$info->{display_height}", "${dw}x$dh", "$name: display size");
	my @audio = audio_streams($probe);
	is($info->{audio_streams}, scalar @audio, "$name: audio stream count");
	is($info->{has_audio}, @audio ? JSON::PP::true : JSON::PP::false, "$name: has_audio");
	if (@audio)
	{
		my %codecs = map { $_->{codec_name} => 1 } @audio;
		ok($codecs{ $info->{audio_codec} }, "$name: audio codec $info->{audio_codec} is one of the file's");
	}
	else
	{
		ok(!defined $info->{audio_codec}, "$name: no audio codec");
	}
}

# specific expectations of the corpus
my %expect = (
	phone_rotated => { rotation => 270, display_width => 360, display_height => 640 },
	anamorphic_interlaced_ts => { display_width => 768, field_order => 'tt', sample_aspect_ratio => '16:15' },
	pq_hdr => { hdr => JSON::PP::true, color_transfer => 'smpte2084' },
	hlg_hdr => { hdr => JSON::PP::true, color_transfer => 'arib-std-b67' },
	two_audio_tracks => { audio_streams => 2, audio_channels => 1 },
	hevc10_surround => { audio_channels => 6, pix_fmt => 'yuv420p10le' },
	cctv_5fps => { fps => 5 },
);
for my $name (sort keys %expect)
{
	my $info = run_transcode('probe', fixture($name))->{json};
	for my $key (sort keys %{ $expect{$name} })
	{
		is($info->{$key}, $expect{$name}{$key}, "$name: $key is $expect{$name}{$key}");
	}
}

for my $name (bad_input_names())
{
	my ($path, $status) = bad_input($name);
	my $result = run_transcode('probe', $path);
	is($result->{status}, $status, "bad input $name: exit $status");
	like($result->{last_error}, qr/^vproxy-transcode: \w.{8,}/, "bad input $name: the cause in words");
	is($result->{stdout}, '', "bad input $name: nothing on stdout");
	is(sanitizer_report($result), '', "bad input $name: no sanitizer report");
}

my %causes = (
	audio_only => qr/no video stream/,
	cover_art_only => qr/no video stream/,
	too_wide => qr/9000x16, larger than/,
	empty => qr/empty/,
	concat_list => qr/not a video container/,
	hls_playlist => qr/not a video container/,
	header_then_garbage => qr/no frame .* decodes/,
);
for my $name (sort keys %causes)
{
	my ($path) = bad_input($name);
	like(run_transcode('probe', $path)->{last_error}, $causes{$name}, "bad input $name: says why");
}

my $missing = run_transcode('probe', scratch_dir() . '/no-such-file.mp4');
is($missing->{status}, 66, 'missing input: exit 66');
like($missing->{last_error}, qr/does not exist/, 'missing input: says so');

is(run_transcode('probe')->{status}, 64, 'no input: usage error');
is(run_transcode('probe', 'a', 'b')->{status}, 64, 'two inputs: usage error');

done_testing();
