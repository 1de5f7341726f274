# VproxyTest::Media: the media fixture corpus, made on demand with the ffmpeg
# CLI, and ffprobe/ffmpeg helpers that check outputs independently of our
# own code.  Other rooms' tests may use fixture(), run_transcode() and the
# ffprobe helpers.
#
# Fixtures are cached in $ENV{VPROXY_FIXTURE_DIR} when it is set (a test
# runner can share one directory between test files and remove it at the
# end), else in a temporary directory removed when the test ends.
package VproxyTest::Media;

use strict;
use warnings;
use Exporter 'import';
use File::Temp qw(tempdir);
use File::Spec;
use IPC::Open3;
use JSON::PP;
use POSIX qw(floor);
use Symbol 'gensym';

our @EXPORT = qw(
  transcode_program run_transcode sanitizer_report fixture fixture_names
  fixture_info bad_input bad_input_names scratch_dir ffprobe_json
  video_stream audio_streams display_size expected_proxy_size
  top_level_boxes psnr keyframe_times run_quiet have_program fuzz_seeds
  oracle_duration oracle_fps proxy_threads upload_names upload_fixture upload_info
);

my $JSON = JSON::PP->new->canonical;
my $cache_dir;

# The program under test.
sub transcode_program { return $ENV{VPROXY_TRANSCODE} // 'vproxy-transcode' }

# Whether a program is on PATH.
sub have_program
{
	my ($name) = @_;
	for my $dir (File::Spec->path)
	{
		return 1 if -x "$dir/$name";
	}
	return 0;
}

# The threads of a running proxy with a thread budget of $budget: the
# pipeline's two (decoding, encoding) and the decoder's frame threads, the
# budget and three more where it is all the cores (src/media/limits.c); a
# single frame thread decodes in the decoding thread itself.
sub proxy_threads
{
	my ($budget) = @_;
	chomp(my $cores = `nproc`);
	my $frame_threads = $budget + ($budget >= $cores ? 3 : 0);
	return 2 + ($frame_threads > 1 ? $frame_threads : 0);
}

# A fresh temporary directory removed when the test ends.
sub scratch_dir { return tempdir('vproxy-media-XXXXXX', TMPDIR => 1, CLEANUP => 1) }

# Run a command, die on failure; its output is discarded.
sub run_quiet
{
	my @cmd = @_;
	my $out = '';
	my $pid = open3(my $in, my $fh, undef, @cmd);
	close $in;
	local $/;
	$out = <$fh> // '';
	waitpid $pid, 0;
	die "command failed ($?): @cmd\n$out" if $? != 0;
	return $out;
}

# Make sanitizer reports fatal and recognisable for the ASan build.
sub sanitizer_environment
{
	return (
		ASAN_OPTIONS => $ENV{ASAN_OPTIONS} // 'halt_on_error=1:abort_on_error=0:exitcode=86:detect_leaks=1',
		UBSAN_OPTIONS => $ENV{UBSAN_OPTIONS} // 'halt_on_error=1:print_stacktrace=1:exitcode=87',
	);
}

# Run vproxy-transcode with @args.  Returns a hash: status (exit status or
# 128+signal), stdout, stderr, json (decoded stdout when it is JSON),
# last_error (last stderr line).  Options in a leading hash: env, progress
# (true: --progress-fd 3 lines collected into {progress}), on_progress (a
# sub called with each progress line and the pid), wrapper (a command list
# put before the program, e.g. valgrind).
sub run_transcode
{
	my $opts = ref $_[0] eq 'HASH' ? shift : {};
	my @args = @_;
	my @cmd = (@{ $opts->{wrapper} // [] }, transcode_program(), @args);
	local %ENV = (%ENV, sanitizer_environment(), %{ $opts->{env} // {} });
	my $dir = scratch_dir();
	my ($out_file, $err_file) = ("$dir/stdout", "$dir/stderr");
	my @progress;

	pipe(my $progress_read, my $progress_write) or die "pipe: $!";
	my $pid = fork() // die "fork: $!";
	if ($pid == 0)
	{
		close $progress_read;
		open STDOUT, '>', $out_file or die;
		open STDERR, '>', $err_file or die;
		open STDIN, '<', '/dev/null' or die;
		if ($opts->{progress} || $opts->{on_progress})
		{
			# put the pipe on fd 3
			require POSIX;
			POSIX::dup2(fileno($progress_write), 3) or die "dup2: $!";
			push @cmd, '--progress-fd', '3';
		}
		exec { $cmd[0] } @cmd or die "exec $cmd[0]: $!";
	}
	close $progress_write;
	while (my $line = <$progress_read>)
	{
		chomp $line;
		push @progress, $line;
		$opts->{on_progress}->($line, $pid) if $opts->{on_progress};
	}
	close $progress_read;
	waitpid $pid, 0;
	my $status = $? & 127 ? 128 + ($? & 127) : $? >> 8;
	my %result = (status => $status, progress => \@progress);
	for (['stdout', $out_file], ['stderr', $err_file])
	{
		open my $fh, '<', $_->[1] or die;
		local $/;
		$result{ $_->[0] } = <$fh> // '';
	}
	my @lines = grep { length } split /\n/, $result{stderr};
	$result{last_error} = @lines ? $lines[-1] : '';
	$result{json} = eval { decode_json($result{stdout}) } if $result{stdout} =~ /^\{/;
	return \%result;
}

# The sanitizer or valgrind report in a result's stderr, '' when clean.
sub sanitizer_report
{
	my ($result) = @_;
	return $1 if $result->{stderr} =~ /((?:==\d+==ERROR: \w+Sanitizer|runtime error:|ERROR: LeakSanitizer).*)/s;
	return '';
}

# The corpus: name => [file extension, ffmpeg arguments after the inputs
# (or a sub making the file), description].  Small, short clips, one per
# real-world case.
my $SINE = 'sine=frequency=440:sample_rate=44100';
my %FIXTURES = (
	phone_rotated => ['mp4', sub {
		my ($path, $dir) = @_;
		my $plain = "$dir/phone_plain.mp4";
		ffmpeg(qw(-f lavfi -i testsrc2=size=640x360:rate=30 -f lavfi -i), "$SINE:duration=6",
			qw(-t 6 -c:v libx264 -preset veryfast -g 60 -c:a aac -ac 2 -b:a 96k), $plain);
		ffmpeg('-i', $plain, qw(-c copy -metadata:s:v:0 rotate=90), $path);
		unlink $plain;
	}, 'phone video, H.264 with B-frames (non-reference ones too)/AAC, display matrix 90 degrees, 6 s'],
	anamorphic_interlaced_ts => ['ts', [qw(-f lavfi -i testsrc2=size=720x576:rate=50 -f lavfi -i),
		'sine=frequency=300:sample_rate=48000',
		'-t', '3', '-vf', 'tinterlace=mode=interleave_top,setsar=16/15',
		qw(-flags +ilme+ildct -top 1 -c:v mpeg2video -b:v 4M -c:a mp2 -ac 2 -output_ts_offset 10)],
		'interlaced MPEG-2 (TFF), 720x576 SAR 16:15, MP2, MPEG-TS starting at 10 s'],
	audio_switch_ts => ['ts', sub {
		my ($path, $dir) = @_;
		ffmpeg(qw(-f lavfi -i testsrc2=size=320x240:rate=25 -f lavfi -i sine=frequency=500:sample_rate=44100
			-t 2 -c:v libx264 -preset ultrafast -c:a mp2 -ac 1 -b:a 64k), "$dir/one.ts");
		ffmpeg(qw(-f lavfi -i testsrc2=size=320x240:rate=25 -f lavfi -i sine=frequency=800:sample_rate=48000
			-t 2 -c:v libx264 -preset ultrafast -c:a mp2 -ac 2 -b:a 128k -output_ts_offset 2), "$dir/two.ts");
		write_file($path, read_file("$dir/one.ts") . read_file("$dir/two.ts"));
		unlink "$dir/one.ts", "$dir/two.ts";
	}, 'MPEG-TS whose audio turns from mono 44.1 kHz to stereo 48 kHz mid-stream, like broadcast'],
	size_switch_ts => ['ts', sub {
		my ($path, $dir) = @_;
		ffmpeg(qw(-f lavfi -i testsrc2=size=320x240:rate=25 -t 2 -c:v libx264 -preset ultrafast), "$dir/one.ts");
		ffmpeg(qw(-f lavfi -i testsrc2=size=640x360:rate=25 -t 2 -c:v libx264 -preset ultrafast
			-output_ts_offset 2), "$dir/two.ts");
		write_file($path, read_file("$dir/one.ts") . read_file("$dir/two.ts"));
		unlink "$dir/one.ts", "$dir/two.ts";
	}, 'MPEG-TS whose picture size changes mid-stream (320x240 then 640x360)'],
	phone_short_gop => ['mp4', [qw(-f lavfi -i testsrc2=size=320x240:rate=30 -f lavfi -i), "$SINE",
		qw(-t 4 -c:v libx264 -preset veryfast -bf 0 -g 12 -refs 4 -c:a aac -b:a 64k)],
		'phone-like H.264 without B-frames, a keyframe (IDR) every 12 frames, 4 references'],
	hevc_cra_ts => ['ts', [qw(-f lavfi -i testsrc2=size=320x240:rate=30 -t 4 -c:v libx265 -preset ultrafast
		-x265-params log-level=error:bframes=0:keyint=15 -muxdelay 0 -muxpreload 0)],
		'HEVC without B-frames in MPEG-TS (start codes), a CRA keyframe every 15 frames, starting at 0'],
	vp9_opus_webm => ['webm', [qw(-f lavfi -i testsrc2=size=426x240:rate=24 -f lavfi -i),
		'sine=frequency=500:sample_rate=48000',
		qw(-t 3 -c:v libvpx-vp9 -deadline realtime -cpu-used 8 -b:v 300k -c:a libopus -ac 2)],
		'VP9/Opus WebM, 426x240'],
	hevc10_surround => ['mkv', [qw(-f lavfi -i testsrc2=size=640x360:rate=25 -f lavfi -i),
		'aevalsrc=sin(300*2*PI*t)|sin(400*2*PI*t)|sin(500*2*PI*t)|0.1*sin(50*2*PI*t)|sin(600*2*PI*t)|sin(700*2*PI*t):c=5.1:s=48000',
		qw(-t 3 -c:v libx265 -preset ultrafast -pix_fmt yuv420p10le -x265-params log-level=error
		  -c:a ac3 -b:a 192k)],
		'HEVC Main 10 with 5.1 AC-3 in Matroska'],
	mjpeg_pcm_avi => ['avi', [qw(-f lavfi -i testsrc2=size=320x240:rate=15 -f lavfi -i),
		'sine=frequency=700:sample_rate=22050',
		qw(-t 3 -c:v mjpeg -q:v 5 -pix_fmt yuvj422p -c:a pcm_s16le -ac 1)],
		'MJPEG 4:2:2 full range, mono PCM, AVI'],
	mpeg4_mp3_avi => ['avi', [qw(-f lavfi -i testsrc2=size=352x288:rate=25 -f lavfi -i),
		"$SINE",
		qw(-t 3 -c:v mpeg4 -q:v 4 -c:a libmp3lame -b:a 96k -ac 2)],
		'MPEG-4 part 2 with MP3 (1152-sample frames), AVI'],
	vfr_mp4 => ['mp4', [qw(-f lavfi -i testsrc2=size=320x240:rate=30 -f lavfi -i), "$SINE",
		'-t', '4', '-vf', "select='not(mod(n\\,3))+not(mod(n\\,7))+between(n\\,40\\,60)'",
		qw(-vsync vfr -c:v libx264 -preset ultrafast -c:a aac -ac 1)],
		'variable frame rate H.264'],
	odd_ffv1 => ['mkv', [qw(-f lavfi -i testsrc2=size=322x242:rate=25 -t 3 -vf crop=321:241:0:0:exact=1
		-pix_fmt yuv420p -c:v ffv1)],
		'odd width and height, FFV1, no audio'],
	prores_mov => ['mov', [qw(-f lavfi -i testsrc2=size=320x240:rate=25 -f lavfi -i),
		'sine=frequency=900:sample_rate=48000',
		qw(-t 2 -c:v prores_ks -profile:v 0 -pix_fmt yuv422p10le -c:a pcm_s16le -ac 2)],
		'ProRes 422 Proxy (10-bit 4:2:2) with PCM, MOV'],
	two_audio_tracks => ['mkv', [qw(-f lavfi -i testsrc2=size=320x240:rate=25 -f lavfi -i),
		'aevalsrc=sin(300*2*PI*t)|sin(400*2*PI*t)|sin(500*2*PI*t)|0.1*sin(50*2*PI*t)|sin(600*2*PI*t)|sin(700*2*PI*t):c=5.1:s=48000',
		'-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=48000',
		qw(-t 3 -map 0:v -map 1:a -map 2:a -c:v libx264 -preset ultrafast -c:a aac
		  -disposition:a:0 0 -disposition:a:1 default)],
		'two audio tracks: 5.1 not default, mono default'],
	cctv_5fps => ['mp4', [qw(-f lavfi -i testsrc2=size=640x360:rate=5 -t 4 -c:v libx264 -preset ultrafast)],
		'5 fps CCTV-like, no audio'],
	one_frame => ['mp4', [qw(-f lavfi -i testsrc2=size=320x240:rate=25 -frames:v 1 -c:v libx264 -preset ultrafast)],
		'a single frame (too short for the fps filter to keep one)'],
	three_frames => ['mp4', [qw(-f lavfi -i testsrc2=size=320x240:rate=25 -frames:v 3 -c:v libx264 -preset ultrafast)],
		'three frames only'],
	pq_hdr => ['mkv', [qw(-f lavfi -i testsrc2=size=640x360:rate=25 -t 2 -c:v libx265 -preset ultrafast
		-pix_fmt yuv420p10le -color_primaries bt2020 -color_trc smpte2084 -colorspace bt2020nc),
		'-x265-params', 'log-level=error:hdr10=1:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)'],
		'HDR10 (PQ, BT.2020) HEVC Main 10'],
	hlg_hdr => ['mp4', [qw(-f lavfi -i testsrc2=size=480x270:rate=30 -t 2 -c:v libx265 -preset ultrafast
		-pix_fmt yuv420p10le -color_primaries bt2020 -color_trc arib-std-b67 -colorspace bt2020nc
		-x265-params log-level=error:colorprim=bt2020:transfer=arib-std-b67:colormatrix=bt2020nc -tag:v hvc1)],
		'HLG HDR HEVC Main 10 in MP4'],
	browser_webm => ['webm', sub {
		my ($path, $dir) = @_;
		# as MediaRecorder writes it: live (no duration, no cues), 1 ms time
		# base, variable frame rate with a duplicated timestamp, no default
		# frame duration, the last cluster cut off
		run_pipe("$dir/live.webm", 'ffmpeg', qw(-nostdin -hide_banner -loglevel error -f lavfi -i testsrc2=size=320x240:rate=30
			-f lavfi -i sine=frequency=440:sample_rate=48000 -t 10),
			'-vf', "setpts='(N-eq(N\\,100)+0.3*sin(N))/30/TB'", qw(-fps_mode passthrough
			-c:v libvpx -deadline realtime -cpu-used 8 -b:v 400k -g 90 -c:a libopus -b:a 48k -live 1 -f webm pipe:1));
		my $data = read_file("$dir/live.webm");
		unlink "$dir/live.webm";
		strip_default_duration(\$data);
		write_file($path, substr($data, 0, length($data) - 3000));
	}, 'browser recording (MediaRecorder-like): VP8/Opus WebM, no duration, no cues, 1 ms time base, VFR, a duplicate timestamp, last cluster cut off; 10 s'],
	avchd_m2ts => ['mts', [qw(-f lavfi -i testsrc2=size=1920x1080:rate=50 -f lavfi -i sine=frequency=600:sample_rate=48000
		-t 2 -vf tinterlace=mode=interleave_top -c:v libx264 -preset ultrafast -flags +ildct+ilme -x264-params tff=1
		-c:a ac3 -b:a 192k -mpegts_m2ts_mode 1 -output_ts_offset 1 -f mpegts)],
		'camera AVCHD-like: 1080i H.264 (TFF) and AC-3 in M2TS (192-byte packets), starting at about 1 s'],
	mpeg2_422_five_frames_ts => ['ts', [qw(-f lavfi -i testsrc2=size=1920x1080:rate=50 -vf tinterlace=mode=interleave_top
		-frames:v 5 -c:v mpeg2video -pix_fmt yuv422p -flags +ilme+ildct -top 1 -b:v 30M -f mpegts)],
		'broadcast: five frames of 1080i MPEG-2 4:2:2 in MPEG-TS'],
	quicktime_remux_mkv => ['mkv', sub {
		my ($path, $dir) = @_;
		# a QuickTime clip (time scale 600, variable rate) remuxed to
		# Matroska by a tool that states the time scale as the frame duration
		ffmpeg(qw(-f lavfi -i testsrc2=size=320x240:rate=30 -f lavfi -i sine=frequency=700:sample_rate=44100 -t 3),
			'-vf', "setpts='(N+0.4*sin(N))/30/TB'", qw(-fps_mode vfr -c:v libx264 -preset ultrafast
			-c:a aac -video_track_timescale 600), "$dir/qt.mov");
		ffmpeg('-i', "$dir/qt.mov", qw(-c copy), "$dir/qt.mkv");
		my $data = read_file("$dir/qt.mkv");
		unlink "$dir/qt.mov", "$dir/qt.mkv";
		set_default_duration(\$data, 1666667);
		write_file($path, $data);
	}, 'QuickTime clip remuxed to Matroska (1 ms time base) whose stated frame duration is 1/600 s'],
	audio_first_mp4 => ['mp4', [qw(-f lavfi -i testsrc2=size=320x240:rate=25 -f lavfi -i sine=frequency=350:sample_rate=48000
		-t 3 -map 1:a -map 0:v -c:v libx264 -preset ultrafast -c:a aac -timecode 10:00:00:00)],
		'MP4 whose first track is audio, with a timecode (data) track'],
	empty_pid_ts => ['ts', sub {
		my ($path, $dir) = @_;
		# two video programmes' worth of streams, the first PID's packets removed
		ffmpeg(qw(-f lavfi -i testsrc2=size=640x360:rate=25 -f lavfi -i testsrc2=size=320x240:rate=25
			-f lavfi -i sine=frequency=450:sample_rate=48000 -t 3 -map 0:v -map 1:v -map 2:a
			-c:v libx264 -preset ultrafast -c:a mp2), "$dir/two.ts");
		my $data = read_file("$dir/two.ts");
		unlink "$dir/two.ts";
		my $out = '';
		for (my $i = 0; $i + 188 <= length $data; $i += 188)
		{
			my $packet = substr($data, $i, 188);
			$out .= $packet unless ((unpack('n', substr($packet, 1, 2)) & 0x1fff) == 0x100);
		}
		write_file($path, $out);
	}, 'MPEG-TS whose first video PID (the larger picture) carries no packets'],
	hevc_hdr_bitstream_mp4 => ['mp4', [qw(-f lavfi -i testsrc2=size=480x270:rate=25 -t 2 -c:v libx265 -preset ultrafast
		-pix_fmt yuv420p10le -x265-params log-level=error:hdr10=1:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc
		-tag:v hvc1)],
		'HEVC PQ HDR signalled only in the bitstream (no colour in the container)'],
	dv_two_pairs => ['dv', [qw(-f lavfi -i testsrc2=size=720x576:rate=25 -f lavfi -i sine=frequency=300:sample_rate=48000
		-f lavfi -i sine=frequency=900:sample_rate=48000 -t 1 -map 0:v -map 1:a -map 2:a
		-c:v dvvideo -pix_fmt yuv422p -c:a pcm_s16le -ac 2 -f dv)],
		'DV50 (4:2:2) with two stereo audio pairs'],
	h263_amr_3gp => ['3gp', sub {
		my ($path, $dir) = @_;
		amr_nb_file("$dir/speech.amr", 3);
		ffmpeg(qw(-f lavfi -i testsrc2=size=176x144:rate=15 -i), "$dir/speech.amr",
			qw(-t 3 -c:v h263 -b:v 128k -c:a copy), $path);
		unlink "$dir/speech.amr";
	}, 'old phone: H.263 QCIF with AMR-NB in 3GP'],
	flv_h264 => ['flv', [qw(-f lavfi -i testsrc2=size=480x270:rate=25 -f lavfi -i sine=frequency=550:sample_rate=44100
		-t 3 -c:v libx264 -preset ultrafast -c:a aac -b:a 96k -f flv)],
		'FLV with H.264 and AAC'],
	wmv => ['wmv', [qw(-f lavfi -i testsrc2=size=320x240:rate=25 -f lavfi -i sine=frequency=650:sample_rate=44100
		-t 3 -c:v wmv2 -b:v 600k -c:a wmav2 -b:a 64k -f asf)],
		'Windows Media: WMV2 and WMA2 in ASF'],
	yuv444_mov => ['mov', [qw(-f lavfi -i testsrc2=size=400x300:rate=30 -f lavfi -i), "$SINE",
		qw(-t 2 -c:v libx264 -preset ultrafast -pix_fmt yuv444p -c:a aac -ac 2 -timecode 01:00:00:00)],
		'H.264 4:4:4 in MOV with a timecode (data) track'],
);

# Real-world uploads of issue 23, each tested against the ffmpeg CLI
# (070_media_uploads.pl): name => [extension, ffmpeg arguments or a sub
# making it, description, what probe must say (and `times`: when to check
# the thumbnail against the CLI's frame; `deinterlace`: the CLI reference
# deinterlaces like the thumbnail)].  Thumbnail times lie in the later part
# of a frame interval, where `select=gte(t,T)` and vproxy's target agree.
my %UPLOADS = (
	dvb_capture_ts => ['ts', sub {
		my ($path, $dir) = @_;
		# a programme of two video PIDs, the first carrying nothing; the
		# 1080i one open-GOP (I pictures with recovery points); the capture
		# starts mid-GOP and loses one TS packet in twenty of the video PID,
		# so that every frame the decoder gives is concealed, one of them a
		# whole grey frame
		ffmpeg(qw(-f lavfi -i testsrc2=size=640x360:rate=25 -f lavfi -i testsrc2=size=1920x1080:rate=50
			-f lavfi -i sine=frequency=600:sample_rate=48000 -t 4 -map 0:v -map 1:v -map 2:a
			-filter:v:1 tinterlace=mode=interleave_top -c:v:0 libx264 -preset ultrafast
			-c:v:1 libx264 -preset veryfast -b:v:1 6M -flags:v:1 +ildct+ilme
			-x264-params:v:1 tff=1:keyint=25:open-gop=1:bframes=2 -c:a mp2 -f mpegts), "$dir/full.ts");
		my $data = read_file("$dir/full.ts");
		unlink "$dir/full.ts";
		my ($out, $lost, $count) = ('', 0, int(length($data) / 188));
		for my $i (int($count * 0.45) .. $count - 1)
		{
			my $packet = substr($data, $i * 188, 188);
			my $pid = unpack('n', substr($packet, 1, 2)) & 0x1fff;
			next if $pid == 0x100 || ($pid == 0x101 && ++$lost % 20 == 0);
			$out .= $packet;
		}
		write_file($path, $out);
	}, 'DVB capture: 1080i H.264 starting mid-GOP, the first video PID empty, every frame concealed',
		{ width => 1920, height => 1080, field_order => 'tt', times => [0.62, 1.5], deinterlace => 1 }],
	joined_ts => ['ts', sub {
		my ($path, $dir) = @_;
		# a camera's recordings joined end to end: the second starts again
		# at the first's time, the third an hour later
		my @parts = (['testsrc2', 400, ''], ['testsrc', 700, ''], ['testsrc2', 1000, '3600']);
		my $data = '';
		for my $i (0 .. $#parts)
		{
			my ($source, $tone, $offset) = @{ $parts[$i] };
			ffmpeg('-f', 'lavfi', '-i', "$source=size=320x240:rate=25", '-f', 'lavfi', '-i', "sine=frequency=$tone:sample_rate=48000",
				qw(-t 2 -c:v libx264 -preset ultrafast -g 25 -pix_fmt yuv420p -c:a mp2),
				($i == 2 ? ('-vf', 'negate') : ()), ($offset ? ('-output_ts_offset', $offset) : ()), "$dir/part$i.ts");
			$data .= read_file("$dir/part$i.ts");
			unlink "$dir/part$i.ts";
		}
		write_file($path, $data);
	}, 'three MPEG-TS recordings joined: the timestamps jump back, then an hour on',
		{ width => 320, height => 240, times => [1.024, 3.024, 7.024] }],
	joined_vob => ['vob', sub {
		my ($path, $dir) = @_;
		my $data = '';
		for my $i (1, 2)
		{
			ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=352x288:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=' . 300 * $i . ':sample_rate=48000',
				qw(-t 2 -c:v mpeg2video -b:v 2M -g 12 -c:a mp2 -f vob), ($i == 2 ? ('-vf', 'negate') : ()), "$dir/part$i.vob");
			$data .= read_file("$dir/part$i.vob");
			unlink "$dir/part$i.vob";
		}
		write_file($path, $data);
	}, 'two DVD VOBs (MPEG-2, MPEG-PS) joined: the second starts again at the first\'s time',
		{ width => 352, height => 288, times => [0.524, 2.524, 3.524] }],
	motion_photo_mp4 => ['mp4', [qw(-f lavfi -i testsrc2=size=640x480:rate=1.1 -f lavfi -i testsrc2=size=480x360:rate=30
		-f lavfi -i sine=frequency=500:sample_rate=48000 -map 0:v -map 1:v -map 2:a
		-filter:v:0 trim=end_frame=2 -filter:v:1 trim=end_frame=53 -t 1.82
		-c:v libx265 -preset ultrafast -x265-params log-level=error -tag:v hvc1 -c:a aac
		-disposition:v:0 default -disposition:v:1 default)],
		'Motion Photo: two HEVC tracks both default, two larger stills first, then the 53-frame motion',
		{ width => 480, height => 360, fps => 30, frame_count => 53, times => [0.52] }],
	theora444_ogg => ['ogv', [qw(-f lavfi -i testsrc2=size=320x240:rate=30 -f lavfi -i sine=frequency=500:sample_rate=48000
		-t 8 -vf), "select='not(between(t\\,2\\,3.5))'", qw(-fps_mode vfr -pix_fmt yuv444p -c:v libtheora -g 150 -q:v 6
		-c:a libvorbis)],
		'screencast: Theora 4:4:4 in Ogg, keyframes 6.5 s apart, a still stretch without frames',
		{ width => 320, height => 240, pix_fmt => 'yuv444p', times => [1.22, 3.62, 6.22, 7.12] }],
	mpeg4_ts => ['ts', [qw(-f lavfi -i testsrc2=size=320x240:rate=25 -f lavfi -i sine=frequency=800:sample_rate=48000
		-t 8 -c:v mpeg4 -q:v 4 -g 60 -c:a mp2)],
		'DVR recording: MPEG-4 part 2 in MPEG-TS (its decoder shows garbage for a frame without its references, and says nothing)',
		{ width => 320, height => 240, times => [1.264, 3.024, 5.704] }],
	raw_h264 => ['h264', [qw(-f lavfi -i testsrc2=size=320x240:rate=30 -t 4 -c:v libx264 -preset ultrafast -bf 2 -f h264)],
		'NVR export: raw H.264 elementary stream with B-frames, 30 fps in its timing information',
		{ width => 320, height => 240, fps => 30, format_name => 'h264', times => [1.22] }],
	raw_hevc => ['hevc', [qw(-f lavfi -i testsrc2=size=320x240:rate=30 -t 4 -c:v libx265 -preset ultrafast
		-x265-params log-level=error:vui-timing-info=0 -f hevc)],
		'NVR export: raw HEVC elementary stream without timing information (25 fps, as the CLI assumes)',
		{ width => 320, height => 240, fps => 25, format_name => 'hevc', times => [1.224] }],
	slow_motion_240fps_mp4 => ['mp4', [qw(-f lavfi -i testsrc2=size=320x240:rate=240 -f lavfi -i sine=frequency=900:sample_rate=48000
		-t 2 -c:v libx264 -preset ultrafast -c:a aac)],
		'phone slow motion: 240 fps H.264',
		{ width => 320, height => 240, fps => 240, times => [0.7025] }],
);

# Bad inputs: name => [extension, sub making it, expected exit status].
my %BAD = (
	empty => ['mp4', sub { write_file($_[0], '') }, 65],
	random_bytes => ['mp4', sub { write_file($_[0], pseudo_random(65536, 7)) }, 65],
	text => ['mp4', sub { write_file($_[0], "this is not a video\n" x 200) }, 65],
	truncated_mp4 => ['mp4', sub {
		my ($path, $dir) = @_;
		my $whole = "$dir/whole.mp4";
		ffmpeg(qw(-f lavfi -i testsrc2=size=320x240:rate=25 -t 3 -c:v libx264 -preset ultrafast), $whole);
		my $data = read_file($whole);
		unlink $whole;
		write_file($path, substr($data, 0, int(length($data) * 0.6)));
	}, 65],
	audio_only => ['m4a', sub { ffmpeg('-f', 'lavfi', '-i', "$SINE:duration=2", qw(-c:a aac), $_[0]) }, 65],
	cover_art_only => ['m4a', sub {
		my ($path, $dir) = @_;
		ffmpeg(qw(-f lavfi -i testsrc2=size=64x64:rate=1 -frames:v 1), "$dir/cover.png");
		ffmpeg('-f', 'lavfi', '-i', "$SINE:duration=2", '-i', "$dir/cover.png",
			qw(-map 0:a -map 1:v -c:a aac -c:v png -disposition:v attached_pic), $path);
		unlink "$dir/cover.png";
	}, 65],
	header_then_garbage => ['mkv', sub {
		my ($path, $dir) = @_;
		my $whole = "$dir/whole.mkv";
		ffmpeg(qw(-f lavfi -i testsrc2=size=320x240:rate=25 -t 2 -c:v libx264 -preset ultrafast), $whole);
		my $data = read_file($whole);
		unlink $whole;
		write_file($path, substr($data, 0, 1500) . pseudo_random(200000, 11));
	}, 65],
	# boundary values in MP4 tables: libav answers ENOMEM for the impossible
	# sizes they imply, which is the file's fault, not a lack of memory
	mp4_stts_count => ['mp4', sub { patch_box(@_, 'stts', 8, 0xFFFFFFFF) }, 65],
	mp4_stco_count => ['mp4', sub { patch_box(@_, 'stco', 8, 0xFFFFFFFF) }, 65],
	mp4_stts_count_7f => ['mp4', sub { patch_box(@_, 'stts', 8, 0x7FFFFFFF) }, 65],
	mp4_stsz_size => ['mp4', sub { patch_box(@_, 'stsz', 8, 0x7FFFFFFF) }, 65],
	# 328 bytes of a Matroska file whose first EBML length is invalid: libav answers EIO
	mkv_broken_ebml => ['mkv', sub {
		my ($path, $dir) = @_;
		ffmpeg(qw(-f lavfi -i testsrc2=size=160x120:rate=25 -t 2 -c:v libx264 -preset ultrafast), "$dir/whole.mkv");
		my $data = substr(read_file("$dir/whole.mkv"), 0, 328);
		unlink "$dir/whole.mkv";
		my $at = index($data, "\x15\x49\xa9\x66");
		die "no Info ID in the first bytes" if $at < 0;
		substr($data, $at + 4, 1) = "\x00";
		write_file($path, $data);
	}, 65],
	too_wide => ['mkv', [qw(-f lavfi -i color=size=9000x16:rate=1 -frames:v 1 -c:v ffv1)], 65],
	concat_list => ['ffconcat', sub { write_file($_[0], "ffconcat version 1.0\nfile '/etc/passwd'\n") }, 65],
	hls_playlist => ['m3u8', sub {
		write_file($_[0], "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nhttp://127.0.0.1:9/x.ts\n#EXT-X-ENDLIST\n");
	}, 65],
);

# An AMR-NB file (storage format, "#!AMR\n") of $seconds: 12.2 kbit/s frames
# (one header byte, 31 bytes of speech parameters, every bit pattern of which
# decodes), since Debian's FFmpeg has an AMR-NB decoder but no encoder.
sub amr_nb_file
{
	my ($path, $seconds) = @_;
	my $frames = int($seconds / 0.02 + 0.5);
	my $params = pseudo_random(31 * $frames, 5);
	write_file($path, "#!AMR\n" . join('', map { "\x3c" . substr($params, 31 * $_, 31) } 0 .. $frames - 1));
}

# Matroska DefaultDuration elements (ID 0x23E383) of a file: the offsets of
# their values and the lengths.
sub default_durations
{
	my ($data) = @_;
	my @found;
	my $at = 0;
	while (($at = index($$data, "\x23\xe3\x83", $at)) >= 0)
	{
		my $size = ord(substr($$data, $at + 3, 1));
		push @found, [$at, $size & 0x7f] if ($size & 0x80);
		$at += 3;
	}
	die "no DefaultDuration element" unless @found;
	return @found;
}

# Rename DefaultDuration to an unknown element, which demuxers skip.
sub strip_default_duration
{
	my ($data) = @_;
	substr($$data, $_->[0], 3) = "\x23\xe3\xfe" for default_durations($data);
}

# Set the first (the video track's) DefaultDuration to $nanoseconds.
sub set_default_duration
{
	my ($data, $nanoseconds) = @_;
	my ($at, $length) = @{ (default_durations($data))[0] };
	my $value = '';
	for (1 .. $length)
	{
		$value = chr($nanoseconds & 255) . $value;
		$nanoseconds >>= 8;
	}
	substr($$data, $at + 4, $length) = $value;
}

# Run a command with its standard output into a file (a pipe: the muxer
# cannot seek back).
sub run_pipe
{
	my ($path, @cmd) = @_;
	open my $out, '>:raw', $path or die "$path: $!";
	open my $pipe, '-|', @cmd or die "$cmd[0]: $!";
	binmode $pipe;
	local $/ = \65536;
	while (my $chunk = <$pipe>)
	{
		print $out $chunk;
	}
	close $pipe or die "command failed ($?): @cmd\n";
	close $out or die "$path: $!";
}

# An ffmpeg-made MP4 (H.264, 2 s; fragmented when $fragmented) with the
# 32-bit field $offset bytes after the type of its first $box set to $value.
sub patch_box
{
	my ($path, $dir, $box, $offset, $value, $fragmented) = @_;
	ffmpeg(qw(-f lavfi -i testsrc2=size=160x120:rate=25 -t 2 -c:v libx264 -preset ultrafast -g 10),
		($fragmented ? qw(-movflags frag_keyframe+empty_moov) : ()), "$dir/plain.mp4");
	my $data = read_file("$dir/plain.mp4");
	unlink "$dir/plain.mp4";
	my $at = index($data, $box);
	die "no $box box" if $at < 0;
	substr($data, $at + $offset, 4) = pack('N', $value);
	write_file($path, $data);
}

# Deterministic bytes that look random.
sub pseudo_random
{
	my ($length, $seed) = @_;
	my $x = $seed;
	my $out = '';
	while (length($out) < $length)
	{
		$x = ($x * 1103515245 + 12345) % 2147483648;
		$out .= chr(($x >> 16) & 255);
	}
	return $out;
}

sub write_file
{
	my ($path, $data) = @_;
	open my $fh, '>:raw', $path or die "$path: $!";
	print $fh $data;
	close $fh or die "$path: $!";
}

sub read_file
{
	my ($path) = @_;
	open my $fh, '<:raw', $path or die "$path: $!";
	local $/;
	return <$fh>;
}

# Run the ffmpeg CLI quietly, overwriting the output.
sub ffmpeg
{
	run_quiet('ffmpeg', qw(-nostdin -hide_banner -loglevel error -y), @_);
}

sub fixture_dir
{
	$cache_dir //= $ENV{VPROXY_FIXTURE_DIR} // scratch_dir();
	-d $cache_dir or mkdir $cache_dir or die "$cache_dir: $!";
	return $cache_dir;
}

# Make (once) the named item of a table; returns its path.
sub make_item
{
	my ($name, $ext, $recipe) = @_;
	my $dir = fixture_dir();
	my $path = "$dir/$name.$ext";
	return $path if -e $path;
	my $work = tempdir("make-$name-XXXXXX", DIR => $dir, CLEANUP => 1);
	my $temp = "$work/$name.$ext";
	if (ref $recipe eq 'CODE')
	{
		$recipe->($temp, $work);
	}
	else
	{
		ffmpeg(@$recipe, $temp);
	}
	rename $temp, $path or die "rename $temp: $!";
	return $path;
}

# The names of the corpus, sorted.
sub fixture_names { return sort keys %FIXTURES }

# The path of a corpus clip, made on first use.
sub fixture
{
	my ($name) = @_;
	my $item = $FIXTURES{$name} or die "no fixture $name";
	return make_item($name, $item->[0], $item->[1]);
}

# What a corpus clip is meant to be.
sub fixture_info { return $FIXTURES{ $_[0] }[2] }

# The names of the real-world uploads, sorted.
sub upload_names { return sort keys %UPLOADS }

# The path of a real-world upload, made on first use.
sub upload_fixture
{
	my ($name) = @_;
	my $item = $UPLOADS{$name} or die "no upload $name";
	return make_item("upload_$name", $item->[0], $item->[1]);
}

# What a real-world upload imitates, and what must be seen of it.
sub upload_info { return @{ $UPLOADS{ $_[0] } }[ 2, 3 ] }

sub bad_input_names { return sort keys %BAD }

# The path of a bad input and the exit status expected for it.
sub bad_input
{
	my ($name) = @_;
	my $item = $BAD{$name} or die "no bad input $name";
	return (make_item("bad_$name", $item->[0], $item->[1]), $item->[2]);
}

# The fuzzing seeds: the corpus's containers and codecs at a size a fuzzer
# mutates quickly (64x48, under a second, a few kB each), written into $dir,
# plus the corpus's clips, bad inputs and uploads under 64 kB.  Returns the
# paths.
my %SEEDS = (
	h264_aac_mp4 => [qw(-c:v libx264 -preset ultrafast -bf 2 -c:a aac -f mp4)],
	h264_frag_mp4 => [qw(-c:v libx264 -preset ultrafast -g 3 -c:a aac -movflags frag_keyframe+empty_moov -f mp4)],
	hevc_ac3_mkv => [qw(-c:v libx265 -preset ultrafast -x265-params log-level=error -c:a ac3 -f matroska)],
	vp9_opus_webm => [qw(-c:v libvpx-vp9 -deadline realtime -cpu-used 8 -c:a libopus -f webm)],
	vp8_live_webm => [qw(-c:v libvpx -deadline realtime -cpu-used 8 -c:a libopus -live 1 -f webm)],
	mjpeg_pcm_avi => [qw(-c:v mjpeg -c:a pcm_s16le -f avi)],
	mpeg4_mp3_avi => [qw(-c:v mpeg4 -c:a libmp3lame -f avi)],
	mpeg2_mp2_ts => [qw(-c:v mpeg2video -flags +ilme+ildct -c:a mp2 -output_ts_offset 10 -f mpegts)],
	h264_m2ts => [qw(-c:v libx264 -preset ultrafast -c:a ac3 -mpegts_m2ts_mode 1 -f mpegts)],
	prores_mov => [qw(-c:v prores_ks -profile:v 0 -c:a pcm_s16le -f mov)],
	flv => [qw(-c:v flv1 -c:a libmp3lame -ar 44100 -f flv)],
	wmv => [qw(-c:v wmv2 -c:a wmav2 -f asf)],
	h263_amr_3gp => sub {
		my ($path, $dir) = @_;
		amr_nb_file("$dir/seed.amr", 0.5);
		ffmpeg(qw(-f lavfi -i testsrc2=size=128x96:rate=10 -i), "$dir/seed.amr",
			qw(-t 0.5 -c:v h263 -b:v 100k -c:a copy -f 3gp), $path);
		unlink "$dir/seed.amr";
	},
	theora_vorbis_ogg => [qw(-c:v libtheora -c:a libvorbis -f ogg)],
	ffv1_nut => [qw(-c:v ffv1 -c:a pcm_s16le -f nut)],
	mpeg2_ps => [qw(-c:v mpeg2video -c:a mp2 -f vob)],
	mpeg2_mxf => [qw(-r 25 -c:v mpeg2video -ar 48000 -c:a pcm_s16le -f mxf)],
	vp8_ivf => [qw(-c:v libvpx -an -f ivf)],
	h264_raw => [qw(-c:v libx264 -preset ultrafast -bf 2 -an -f h264)],
	hevc_raw => [qw(-c:v libx265 -preset ultrafast -x265-params log-level=error -an -f hevc)],
	mpeg4_ts => [qw(-c:v mpeg4 -g 3 -c:a mp2 -f mpegts)],
	# a DV frame is 120-144 kB, over the fuzzer's inputs: the first 60 kB of one
	dv_cut => sub {
		my ($path, $dir) = @_;
		ffmpeg(qw(-f lavfi -i testsrc2=size=720x576:rate=25 -f lavfi -i sine=sample_rate=48000
			-t 0.08 -c:v dvvideo -pix_fmt yuv420p -c:a pcm_s16le -ac 2 -f dv), "$dir/seed.dv");
		write_file($path, substr(read_file("$dir/seed.dv"), 0, 60000));
		unlink "$dir/seed.dv";
	},
	# two recordings joined: the timestamps jump back (timeline.c)
	joined_ts => sub {
		my ($path, $dir) = @_;
		my $data = '';
		for my $part (1, 2)
		{
			ffmpeg(qw(-f lavfi -i testsrc2=size=64x48:rate=10 -f lavfi -i sine=frequency=440:sample_rate=22050
				-t 0.5 -pix_fmt yuv420p -c:v libx264 -preset ultrafast -c:a mp2 -f mpegts), "$dir/part$part.ts");
			$data .= read_file("$dir/part$part.ts");
			unlink "$dir/part$part.ts";
		}
		write_file($path, $data);
	},
);

sub fuzz_seeds
{
	my ($dir) = @_;
	my @paths;
	for my $name (sort keys %SEEDS)
	{
		my $path = "$dir/$name";
		eval {
			if (ref $SEEDS{$name} eq 'CODE')
			{
				$SEEDS{$name}->($path, $dir);
			}
			else
			{
				ffmpeg(qw(-f lavfi -i testsrc2=size=64x48:rate=10 -f lavfi -i sine=frequency=440:sample_rate=22050
					-t 0.5 -pix_fmt yuv420p -b:v 100k -b:a 32k), @{ $SEEDS{$name} }, $path);
			}
			push @paths, $path;
			1;
		} or warn "fuzz seed $name not made: $@";
	}
	for my $name (fixture_names(), (map { "bad_$_" } bad_input_names()), map { "upload_$_" } upload_names())
	{
		my ($source) = $name =~ /^bad_(.*)/ ? bad_input($1) : $name =~ /^upload_(.*)/ ? upload_fixture($1) : fixture($name);
		next unless -s $source && -s $source < 65536;
		my $path = "$dir/corpus_$name";
		write_file($path, read_file($source));
		push @paths, $path;
	}
	return @paths;
}

# ffprobe's view of a file (streams, format, stream side data).
sub ffprobe_json
{
	my ($path, @extra) = @_;
	# only fatal errors: a damaged file's decoding errors would mix with the JSON
	my $out = run_quiet('ffprobe', qw(-v fatal -of json -show_format -show_streams), @extra, $path);
	return decode_json($out);
}

# The video stream a player plays, which vproxy must choose: of the video
# streams that are not cover art, one whose picture size ffprobe found (a
# programme's PID may carry no packet), then the one marked default, then
# the most frames, then the longest, then the largest picture; the first of
# equals.  (ffmpeg's own choice is the largest picture, which for a Motion
# Photo is its two stills.)
sub video_stream
{
	my ($probe) = @_;
	my $best;
	for my $s (@{ $probe->{streams} })
	{
		next unless $s->{codec_type} eq 'video' && !($s->{disposition}{attached_pic});
		$best = $s if !$best || better_video($s, $best) > 0;
	}
	return $best;
}

# Compare two ffprobe video streams by the rule of video_stream: > 0 when $a is better.
sub better_video
{
	my ($a, $b) = @_;
	my $both = sub { my ($key) = @_; ($a->{$key} // 0) > 0 && ($b->{$key} // 0) > 0 };
	return ((($a->{width} // 0) > 0) <=> (($b->{width} // 0) > 0))
	  || (($a->{disposition}{default} // 0) <=> ($b->{disposition}{default} // 0))
	  || ($both->('nb_frames') ? $a->{nb_frames} <=> $b->{nb_frames} : 0)
	  || ($both->('duration') ? $a->{duration} <=> $b->{duration} : 0)
	  || (($a->{width} // 0) * ($a->{height} // 0) <=> ($b->{width} // 0) * ($b->{height} // 0));
}

# The packets ffprobe reads of a file: [stream index, pts or dts, duration], seconds.
sub packet_times
{
	my ($path) = @_;
	my $out = run_quiet('ffprobe', qw(-v quiet -show_entries), 'packet=stream_index,pts_time,dts_time,duration_time',
		qw(-of csv=p=0), $path);
	my @packets;
	for my $line (grep { /^\d+,/ } split /\n/, $out)
	{
		my ($index, $pts, $dts, $duration) = split /,/, $line;
		my $t = ($pts // '') =~ /\d/ ? $pts : ($dts // '') =~ /\d/ ? $dts : undef;
		push @packets, [$index, $t, ($duration // '') =~ /\d/ ? $duration : 0] if defined $t;
	}
	return @packets;
}

# A file's duration as ffprobe states it; where it states none, the end of
# its last packets (pts + duration, as ffprobe lists them) less the start time.
sub oracle_duration
{
	my ($path, $probe) = @_;
	$probe //= ffprobe_json($path);
	return $probe->{format}{duration} if ($probe->{format}{duration} // 0) > 0;
	my $end;
	for my $p (packet_times($path))
	{
		$end = $p->[1] + $p->[2] if !defined $end || $p->[1] + $p->[2] > $end;
	}
	die "$path: no packet with a time" unless defined $end;
	return $end - ($probe->{format}{start_time} // 0);
}

# A video stream's frame rate a person would recognise: ffprobe's average
# (else nominal) rate when plausible (at most 240 and not the inverse of the
# time base), else frames over the video's duration (the container's count,
# else ffprobe's packets).
sub oracle_fps
{
	my ($path, $probe) = @_;
	$probe //= ffprobe_json($path);
	my $video = video_stream($probe);
	my $rate = fraction($video->{avg_frame_rate}) || fraction($video->{r_frame_rate});
	my $inverse_time_base = 1 / fraction($video->{time_base});
	return $rate if $rate > 0 && $rate <= 240 && abs($rate - $inverse_time_base) > 1e-9;
	return $video->{nb_frames} / $video->{duration} if ($video->{nb_frames} // 0) > 0 && ($video->{duration} // 0) > 0;
	my @packets = grep { $_->[0] == $video->{index} } packet_times($path);
	my ($first, $last, $end);
	for my $p (@packets)
	{
		$first = $p->[1] if !defined $first || $p->[1] < $first;
		$last = $p->[1] if !defined $last || $p->[1] > $last;
		$end = $p->[1] + $p->[2] if !defined $end || $p->[1] + $p->[2] > $end;
	}
	my $frames = @packets;
	$frames-- if $end <= $last;
	return $frames / ($end - $first);
}

sub fraction { my ($n, $d) = split m{/}, $_[0] // ''; return $d ? $n / $d : 0 }

sub audio_streams
{
	my ($probe) = @_;
	return grep { $_->{codec_type} eq 'audio' } @{ $probe->{streams} };
}

# Rotation (clockwise display degrees, as ffmpeg's autorotate applies) of a stream.
sub rotation_of
{
	my ($stream) = @_;
	for my $sd (@{ $stream->{side_data_list} // [] })
	{
		if (defined $sd->{rotation})
		{
			my $theta = -$sd->{rotation};
			$theta -= 360 * floor($theta / 360 + 0.9 / 360);
			return int($theta + 0.5) % 360;
		}
	}
	return 0;
}

# Display size of a stream: square pixels from the SAR, rotation applied.
sub display_size
{
	my ($stream) = @_;
	my ($w, $h) = ($stream->{width}, $stream->{height});
	if (($stream->{sample_aspect_ratio} // '') =~ /^(\d+):(\d+)$/ && $1 > 0 && $2 > 0 && $1 != $2)
	{
		$w = int($w * $1 / $2 + 0.5);
	}
	my $rotation = rotation_of($stream);
	return ($rotation == 90 || $rotation == 270) ? ($h, $w) : ($w, $h);
}

sub round_even
{
	my ($x) = @_;
	my $even = 2 * floor($x / 2 + 0.5);
	return $even < 2 ? 2 : $even;
}

# The proxy size the issue asks for: height 480 (never upscaled, even), display aspect.
sub expected_proxy_size
{
	my ($stream, $target) = @_;
	$target //= 480;
	my ($dw, $dh) = display_size($stream);
	my $h = $dh > $target ? $target : 2 * floor($dh / 2);
	return (round_even($h * $dw / $dh), $h);
}

# Top-level box types of an MP4 file, in order.
sub top_level_boxes
{
	my ($path) = @_;
	open my $fh, '<:raw', $path or die "$path: $!";
	my @boxes;
	my $offset = 0;
	my $size = -s $path;
	while ($offset + 8 <= $size)
	{
		seek $fh, $offset, 0;
		read($fh, my $header, 16) >= 8 or last;
		my ($box_size, $type) = unpack 'N a4', $header;
		$box_size = unpack 'x8 Q>', $header if $box_size == 1;
		$box_size = $size - $offset if $box_size == 0;
		last if $box_size < 8;
		push @boxes, $type;
		$offset += $box_size;
	}
	return @boxes;
}

# Average PSNR (dB) of picture file $a against $b, both decoded by ffmpeg and
# compared at $b's size in yuv420p full range.
sub psnr
{
	my ($a, $b) = @_;
	my $out = run_quiet('ffmpeg', qw(-nostdin -hide_banner -loglevel info -i), $a, '-i', $b,
		'-lavfi', '[0]scale=in_range=auto:out_range=full,format=yuvj420p[x];[1]scale=in_range=auto:out_range=full,format=yuvj420p[y];[x][y]psnr',
		qw(-f null -));
	return $out =~ /average:(inf|[\d.]+)/ ? ($1 eq 'inf' ? 99 : $1) : -1;
}

# Presentation times of the key frames of the first video stream.
sub keyframe_times
{
	my ($path) = @_;
	my $out = run_quiet('ffprobe', qw(-v error -select_streams v:0 -show_entries),
		'packet=pts_time,flags', qw(-of csv=p=0), $path);
	my @times;
	for my $line (split /\n/, $out)
	{
		my ($t, $flags) = split /,/, $line;
		push @times, $t if defined $flags && $flags =~ /K/;
	}
	return sort { $a <=> $b } @times;
}

1;
