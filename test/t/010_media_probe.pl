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
	# where the container states none: the end of the last packets, from ffprobe's packet list
	my $duration = oracle_duration($path, $probe);
	cmp_ok(abs($info->{duration_seconds} - $duration), '<', 0.01, "$name: duration ($duration s)");
	# derived from size and duration, which our bounded probing may estimate a hair differently
	my $bitrate = $probe->{format}{bit_rate} // (-s $path) * 8 / $duration;
	cmp_ok(abs($info->{bitrate} - $bitrate), '<=', 0.005 * $bitrate, "$name: container bit rate");
	# the stated rate when plausible, else frames over the video's span (ffprobe's packets)
	my $fps = oracle_fps($path, $probe);
	cmp_ok(abs($info->{fps} - $fps), '<', 0.001, "$name: average frame rate ($fps)");
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
	quicktime_remux_mkv => { width => 320 },
	hevc_hdr_bitstream_mp4 => { hdr => JSON::PP::true, color_transfer => 'smpte2084' },
	empty_pid_ts => { width => 320, height => 240 },
	audio_first_mp4 => { width => 320, has_audio => JSON::PP::true },
	dv_two_pairs => { audio_streams => 2, audio_channels => 2, display_width => 768 },
	h263_amr_3gp => { codec => 'h263', audio_codec => 'amr_nb' },
	wmv => { codec => 'wmv2', audio_codec => 'wmav2' },
	flv_h264 => { codec => 'h264', audio_codec => 'aac' },
	mpeg2_422_five_frames_ts => { pix_fmt => 'yuv422p', field_order => 'tt' },
	avchd_m2ts => { field_order => 'tt', width => 1920 },
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

# a browser recording states no duration: measured from its timestamps
{
	my $info = run_transcode('probe', fixture('browser_webm'))->{json};
	cmp_ok(abs($info->{duration_seconds} - 10) / 10, '<', 0.02, "browser_webm: 10 s within 2% ($info->{duration_seconds})");
	is(ffprobe_json(fixture('browser_webm'))->{format}{duration}, undef, 'browser_webm: ffprobe finds no duration in the file');
}

# a time base stated as the frame rate (1/600 s): the real average instead
{
	my $info = run_transcode('probe', fixture('quicktime_remux_mkv'))->{json};
	my $video = video_stream(ffprobe_json(fixture('quicktime_remux_mkv')));
	is($video->{avg_frame_rate}, '600/1', 'quicktime_remux_mkv: the file states 600 fps');
	cmp_ok(abs($info->{fps} - 30), '<', 0.5, "quicktime_remux_mkv: fps is about 30 ($info->{fps})");
}

my %causes = (
	mp4_stts_count => qr/impossible amount of memory/,
	mp4_stco_count => qr/impossible amount of memory/,
	mp4_stts_count_7f => qr/impossible amount of memory/,
	mkv_broken_ebml => qr/structure is broken/,
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
