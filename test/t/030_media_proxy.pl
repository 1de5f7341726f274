# vproxy-transcode proxy: every clip of the corpus turned into the 480p/10 fps
# H.264/AAC faststart MP4, each output checked with ffprobe.
use strict;
use warnings;
use Test::More;
use List::Util qw(min max);
use VproxyTest::Media;

plan skip_all => 'ffmpeg/ffprobe not installed' unless have_program('ffmpeg') && have_program('ffprobe');

my $dir = scratch_dir();

sub rate { my ($n, $d) = split m{/}, $_[0]; return $d ? $n / $d : 0 }

# The audio stream the proxy should carry: default disposition, then most channels.
sub best_audio
{
	my @audio = @_;
	my ($best) = sort {
		($b->{disposition}{default} // 0) <=> ($a->{disposition}{default} // 0)
		  || $b->{channels} <=> $a->{channels}
	} @audio;
	return $best;
}

# Check a proxy file against its source; $opt: height, fps.
sub check_proxy
{
	my ($name, $source, $proxy, $json, $opt) = @_;
	my $src = ffprobe_json($source, '-show_entries', 'stream_side_data');
	my $src_video = video_stream($src);
	my $out = ffprobe_json($proxy, '-show_entries', 'stream_side_data');
	my ($video, @rest) = grep { $_->{codec_type} eq 'video' } @{ $out->{streams} };
	my @audio = audio_streams($out);

	ok($video && !@rest, "$name: one video stream");
	is($video->{codec_name}, 'h264', "$name: H.264");
	is($video->{pix_fmt}, 'yuv420p', "$name: yuv420p");
	my ($w, $h) = expected_proxy_size($src_video, $opt->{height});
	is("$video->{width}x$video->{height}", "${w}x$h", "$name: ${w}x$h from the display aspect");
	ok(!$video->{sample_aspect_ratio} || $video->{sample_aspect_ratio} =~ /^(1:1|0:1)$/, "$name: square pixels");
	ok(!grep({ defined $_->{rotation} || ($_->{side_data_type} // '') =~ /Display Matrix/ } @{ $video->{side_data_list} // [] }),
		"$name: no rotation left");
	my $fps = min($opt->{fps} // 10, oracle_fps($source, $src));
	cmp_ok(abs(rate($video->{r_frame_rate}) - $fps), '<', 0.01, "$name: $fps fps");
	my $tolerance = max(0.15, 1.5 / $fps);
	my $duration = oracle_duration($source, $src);
	cmp_ok(abs($out->{format}{duration} - $duration), '<', $tolerance, "$name: duration kept ($duration s)");
	my @boxes = top_level_boxes($proxy);
	my %at = map { $boxes[$_] => $_ } reverse 0 .. $#boxes;
	ok(defined $at{moov} && defined $at{mdat} && $at{moov} < $at{mdat}, "$name: moov before mdat (@boxes)");
	my @keys = keyframe_times($proxy);
	my $gap = 0;
	$gap = max($gap, $keys[$_] - $keys[ $_ - 1 ]) for 1 .. $#keys;
	$gap = max($gap, ($video->{start_time} // 0) + $video->{duration} - $keys[-1]) if @keys;
	cmp_ok($gap, '<=', 2.0 + 1e-6, "$name: a keyframe at least every 2 s");

	my @src_audio = audio_streams($src);
	if (@src_audio)
	{
		is(scalar @audio, 1, "$name: one audio track");
		is($audio[0]{codec_name}, 'aac', "$name: AAC");
		my $channels = min(2, best_audio(@src_audio)->{channels});
		is($audio[0]{channels}, $channels, "$name: $channels channel(s)");
		# AAC carries at most 6144 bits per channel and 1024-sample frame (48 kbit/s at 8 kHz mono)
		my $bitrate = min($opt->{audio_bitrate} // 64000, 6 * $audio[0]{sample_rate} * $channels);
		cmp_ok(abs($audio[0]{bit_rate} - $bitrate), '<', 16000, "$name: about $bitrate bit/s");
		cmp_ok(abs(($audio[0]{duration} // 0) - $video->{duration}), '<', 0.25, "$name: audio as long as video");
	}
	else
	{
		is(scalar @audio, 0, "$name: no audio track");
	}
	if ($json)
	{
		is("$json->{width}x$json->{height}", "$video->{width}x$video->{height}", "$name: JSON size");
		is($json->{codec}, 'h264', "$name: JSON codec");
		is($json->{file_size_bytes}, -s $proxy, "$name: JSON file size");
		cmp_ok(abs($json->{fps} - $fps), '<', 0.01, "$name: JSON fps");
		cmp_ok(abs($json->{duration_seconds} - $out->{format}{duration}), '<', 0.01, "$name: JSON duration");
	}
	return ($src, $out);
}

for my $name (fixture_names())
{
	my $source = fixture($name);
	my $proxy = "$dir/$name.mp4";
	my $result = run_transcode('proxy', $source, $proxy);
	is($result->{status}, 0, "$name: proxy made") or diag $result->{stderr};
	is(sanitizer_report($result), '', "$name: no sanitizer report");
	next unless -e $proxy;
	my ($src, $out) = check_proxy($name, $source, $proxy, $result->{json}, {});
	if ($name =~ /hdr/)
	{
		is($out->{streams}[0]{color_transfer}, 'bt709', "$name: tone-mapped to BT.709");
		is($out->{streams}[0]{color_primaries}, 'bt709', "$name: BT.709 primaries");
	}
	if ($name eq 'anamorphic_interlaced_ts')
	{
		ok(($out->{streams}[0]{field_order} // 'progressive') eq 'progressive', 'interlaced source: progressive proxy');
	}
}

# a browser recording without a duration lasts its 10 s
{
	my $out = ffprobe_json("$dir/browser_webm.mp4");
	cmp_ok(abs($out->{format}{duration} - 10), '<', 0.15, "browser_webm: the proxy lasts 10 s ($out->{format}{duration})");
}

# a picture that starts 1 s after the sound (a camera's TS, a screen
# recording whose first frame comes late) starts at 0 in the proxy, its
# first frame shown from there, as the CLI's constant-rate output does:
# players that honour no edit list (or a hosted player's poster frame)
# would otherwise find nothing at 0
{
	my $source = "$dir/late_picture.mkv";
	VproxyTest::Media::ffmpeg(qw(-f lavfi -i sine=duration=3 -itsoffset 1 -f lavfi -i testsrc2=size=160x120:rate=25:duration=2
		-map 0:a -map 1:v -c:v mpeg4 -q:v 3 -c:a aac), $source);
	my $result = run_transcode('proxy', $source, "$dir/late_picture.mp4");
	is($result->{status}, 0, 'late picture: proxy made') or diag $result->{stderr};
	my $video = video_stream(ffprobe_json("$dir/late_picture.mp4"));
	cmp_ok(abs($video->{start_time} // 1), '<', 1e-6, "late picture: the picture starts at 0 ($video->{start_time})");
	cmp_ok(abs($video->{nb_frames} - 30), '<=', 1, "late picture: 3 s of frames ($video->{nb_frames})");
	my $log = VproxyTest::Media::run_quiet('ffmpeg', qw(-nostdin -hide_banner -i), "$dir/late_picture.mp4", '-i', $source,
		'-lavfi', "[0:v]trim=end_frame=1[p];[1:v]trim=end_frame=1,scale=$video->{width}:$video->{height}:flags=lanczos[r];[p][r]psnr",
		qw(-f null -));
	my ($psnr) = $log =~ /PSNR .* average:([\d.]+|inf)/;
	cmp_ok($psnr // 0, '>', 32, "late picture: the frame at 0 is the source's first (PSNR $psnr dB)");
}

# the frames kept are the ones the CLI's fps filter keeps (skipped decoding
# included: phone_rotated has non-reference B-frames, and the reference
# frames before each keyframe of phone_short_gop and hevc_cra_ts are never
# decoded, which a later frame referring to them would show): each proxy
# frame against the source through fps and a lanczos downscale; a frame off
# by one source frame scores about 24 dB on these moving clips, the right
# one 38+.  Both scalers are among them: zimg's (8- and 10-bit 4:2:0, 4:2:2,
# 4:4:4) and swscale's (odd sizes, full-range MJPEG, packed and paletted
# formats)
for my $name (qw(phone_rotated phone_short_gop hevc_cra_ts vfr_mp4 cctv_5fps mpeg4_mp3_avi odd_ffv1
	vp9_opus_webm yuv444_mov browser_webm quicktime_remux_mkv flv_h264 wmv h263_amr_3gp hevc10_surround
	prores_mov mjpeg_pcm_avi))
{
	my $proxy = "$dir/$name.mp4";
	next unless -e $proxy;
	my $video = video_stream(ffprobe_json($proxy));
	my $log = VproxyTest::Media::run_quiet('ffmpeg', qw(-nostdin -hide_banner -i), $proxy, '-i', fixture($name),
		'-lavfi', "[1:v]fps=$video->{r_frame_rate},scale=$video->{width}:$video->{height}:flags=lanczos[r];[0:v][r]psnr",
		qw(-f null -));
	my ($min) = $log =~ /PSNR .* min:([\d.]+|inf)/;
	cmp_ok($min // 0, '>', 32, "$name: every frame is the one ffmpeg's fps filter picks (worst PSNR $min dB)");
}

# options override the defaults; progress is reported
{
	my $source = fixture('phone_rotated');
	my $proxy = "$dir/options.mp4";
	my $result = run_transcode({ progress => 1 }, 'proxy', $source, $proxy,
		qw(--height 240 --fps 5 --crf 30 --preset veryfast --audio-bitrate 48000));
	is($result->{status}, 0, 'options: proxy made') or diag $result->{stderr};
	check_proxy('options', $source, $proxy, $result->{json}, { height => 240, fps => 5, audio_bitrate => 48000 });
	my @fractions = map { /^progress (\d\.\d+) proxy$/ ? $1 : () } @{ $result->{progress} };
	ok(@fractions >= 5, 'progress lines on the progress fd (' . scalar(@fractions) . ')');
	is_deeply(\@fractions, [sort { $a <=> $b } @fractions], 'progress is monotonic');
	ok(@fractions && $fractions[-1] == 1, 'progress reaches 1 at the end');
	is(scalar(grep { !/^progress \d\.\d{4} \w+$/ } @{ $result->{progress} }), 0, 'progress lines are well formed');
}

for my $bad (['--height', '0'], ['--fps', 'ten'], ['--crf', '99'], ['--preset', 'ludicrous'], ['--audio-bitrate', '5'], ['--colour', 'red'], ['--height'])
{
	my $result = run_transcode('proxy', fixture('three_frames'), "$dir/bad.mp4", @$bad);
	is($result->{status}, 64, "usage error for @$bad");
	ok(!-e "$dir/bad.mp4", "no output for @$bad");
}

done_testing();
