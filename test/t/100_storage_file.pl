# The file backend through `vproxy-transcode storage`: round trips with odd
# keys, head/delete/presign, ranged reads and prefix removal, escapes out of
# the storage directory and symbolic links inside it refused,
# out of space (RLIMIT_FSIZE with SIGXFSZ ignored: write() fails with EFBIG,
# which works unprivileged) transient and leaving the old object intact.
use strict;
use warnings;
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use File::Find;
use Test::More;
use VproxyTest::S3 qw(run_storage random_file same_file);

my $dir = tempdir(CLEANUP => 1);
my $root = "$dir/store";
my %env = (VPROXY_STORAGE_URL => "file://$root");

# A tree holds no temporary file of ours.
sub temp_files_in
{
	my ($top) = @_;
	my @found;
	find(sub { push @found, $File::Find::name if /^\.vproxy-.*\.tmp$/ }, $top) if -d $top;
	return @found;
}

my %files = (
	empty => random_file("$dir/empty.bin", 0),
	one => random_file("$dir/one.bin", 1),
	small => random_file("$dir/small.bin", 100_000),
	large => random_file("$dir/large.bin", 20 * 1024 * 1024),
);

# round trips, with keys as uploaded file names come
my @keys = (
	'uploads/m1/clip.mp4',
	'uploads/m 1/with space.mov',
	'uploads/plus+sign/a+b=c&d.mp4',
	"uploads/unicod\x{e9}/\x{1f3ac} vid\x{e9}o \x{65e5}\x{672c}.mp4",
	'uploads/odd/100%25 done?#frag~tilde;semi,comma@at$dollar\'quote(1)!.mp4',
	'deep/a/b/c/d/e/f/g/h.bin',
	'top-level.bin',
);
utf8::encode($_) for @keys;
my $n = 0;
for my $key (@keys)
{
	my $name = (qw(empty one small large))[ $n++ % 4 ];
	my $src = $files{$name};
	my $put = run_storage(\%env, 'put', $src, $key, '--content-type', 'video/mp4');
	is($put->{exit}, 0, "put $name as '$key'") or diag $put->{stderr};
	is($put->{json}{size_bytes}, -s $src, 'put reports the size');
	ok(same_file($src, "$root/$key"), 'the object is the file, in place under its key');

	my $head = run_storage(\%env, 'head', $key);
	is($head->{exit}, 0, 'head') or diag $head->{stderr};
	is($head->{json}{size_bytes}, -s $src, 'head size');
	like($head->{json}{etag}, qr/^".+"$/, 'head has a quoted etag');
	my $named = $head->{json}{key};
	utf8::encode($named);
	is($named, $key, 'head names the key');

	my $get = run_storage(\%env, 'get', $key, "$dir/got.bin");
	is($get->{exit}, 0, 'get') or diag $get->{stderr};
	ok(same_file($src, "$dir/got.bin"), 'got the same bytes');
	unlink "$dir/got.bin";
}

# the content type survives where the file system keeps extended attributes
my $head = run_storage(\%env, 'head', $keys[0]);
like($head->{json}{content_type}, qr{^(video/mp4|application/octet-stream)$}, 'content type');

# presign: a file:// URL of the object
my $presign = run_storage(\%env, 'presign', $keys[1], '--expires', '60');
is($presign->{exit}, 0, 'presign') or diag $presign->{stderr};
(my $path = $presign->{json}{url}) =~ s{^file://}{} or fail('presign gives a file:// URL');
$path =~ s/%([0-9A-F]{2})/chr(hex($1))/ge;
ok(same_file($path, "$root/$keys[1]"), 'the presigned URL points at the object');
for my $bad ('0', '604801', '-5', 'soon')
{
	my $r = run_storage(\%env, 'presign', $keys[1], '--expires', $bad);
	is($r->{exit}, 64, "presign --expires $bad is a usage error");
}
is(run_storage(\%env, 'presign', $keys[1], '--expires', '604800')->{exit}, 0,
	'presign for seven days');

# overwrite replaces, delete removes, deleting again is fine
is(run_storage(\%env, 'put', $files{small}, $keys[0])->{exit}, 0, 'overwrite');
ok(same_file($files{small}, "$root/$keys[0]"), 'overwritten');
is(run_storage(\%env, 'delete', $keys[0])->{exit}, 0, 'delete');
ok(!-e "$root/$keys[0]", 'deleted');
is(run_storage(\%env, 'delete', $keys[0])->{exit}, 0, 'delete of a missing object succeeds');

# missing objects and storage directory
my $missing = run_storage(\%env, 'get', 'no/such/key.mp4', "$dir/none.bin");
is($missing->{exit}, 66, 'missing object: 66');
like($missing->{last_error}, qr/no object "no\/such\/key.mp4"/, 'the message names the key');
ok(!-e "$dir/none.bin", 'no output file left behind');
is(run_storage(\%env, 'head', 'nothing-here')->{exit}, 66, 'head of a missing object: 66');
is(run_storage({VPROXY_STORAGE_URL => "file://$dir/absent"}, 'get', 'k', "$dir/none.bin")->{exit},
	66, 'missing storage directory: 66');

# escapes
my $outside = "$dir/outside";
make_path("$outside/sub");
random_file("$outside/secret.txt", 100);
symlink($outside, "$root/link-out") or die "symlink: $!";
symlink("$outside/secret.txt", "$root/file-link-out") or die "symlink: $!";
make_path("$root/inside/target");
symlink('inside/target', "$root/link-in") or die "symlink: $!";
for my $key ('../outside/secret.txt', 'uploads/../../outside/secret.txt', '/etc/passwd',
	"$outside/secret.txt", 'link-out/secret.txt', 'file-link-out', 'uploads//x', './x',
	'uploads/.', 'uploads/..', 'link-in/x', 'link-in/new/x')
{
	for my $op (['get', $key, "$dir/escaped.bin"], ['head', $key], ['presign', $key],
		['put', $files{one}, $key], ['delete', $key])
	{
		# deleting a key that is itself a link removes the link (below)
		next if $op->[0] eq 'delete' && $key eq 'file-link-out';
		my $r = run_storage(\%env, @$op);
		is($r->{exit}, 77, "$op->[0] of '$key' refused with 77");
		like($r->{last_error}, qr/refused/, 'the message says refused');
	}
}
ok(!-e "$dir/escaped.bin", 'nothing read out');
is(run_storage(\%env, 'put', $files{one}, 'link-out/sub/new/file.bin')->{exit}, 77,
	'a put through a link out is refused');
ok(!-e "$outside/sub/new", 'and created nothing outside');
ok(-e "$outside/secret.txt", 'nothing deleted outside');
like(run_storage(\%env, 'get', 'link-in/x', "$dir/in.bin")->{last_error},
	qr/symbolic links inside the storage directory are not followed/,
	'a link that stays inside is not followed either');
ok(!-e "$root/inside/target/x", 'nothing was put through it');
is(run_storage(\%env, 'delete', 'file-link-out')->{exit}, 0, 'deleting a key that is a link');
ok(!-l "$root/file-link-out", 'removes the link');
ok(-f "$outside/secret.txt", 'and never its target');

# ranged reads: exact bytes, short at the end, read-ahead served from memory
my $object = 'ranged/object.bin';
is(run_storage(\%env, 'put', $files{large}, $object)->{exit}, 0, 'an object to read ranges of');
my @ranges = ([ 0, 1 ], [ 1000, 70_000 ], [ 20 * 1024 * 1024 - 10, 100 ], [ 30 * 1024 * 1024, 5 ]);
my $read = run_storage(\%env, 'read', $object, "$dir/ranges.bin",
	map { ('--range', "$_->[0]:$_->[1]") } @ranges);
is($read->{exit}, 0, 'read ranges') or diag $read->{stderr};
is($read->{json}{size_bytes}, -s $files{large}, 'the object\'s size');
is_deeply([ map { $_->{got} } @{ $read->{json}{ranges} } ], [ 1, 70_000, 10, 0 ],
	'every range whole, the last ones cut at the end');
open(my $whole, '<:raw', $files{large}) or die;
my $expected = '';
for my $range (@ranges)
{
	seek($whole, $range->[0], 0);
	read($whole, my $part, $range->[1]);
	$expected .= $part // '';
}
ok(do { open(my $in, '<:raw', "$dir/ranges.bin") or die; local $/; <$in> } eq $expected,
	'the bytes of each range, in order');
is($read->{json}{bytes_fetched}, 1 + 70_000 + 10, 'counted: the bytes read, no more');
$read = run_storage(\%env, 'read', $object, "$dir/ranges.bin", '--readahead', 65536,
	map { ('--range', ($_ * 1000) . ':1000') } 0 .. 63);
is($read->{json}{requests}, 1, '64 small reads in a row: one read of the read-ahead');
is($read->{json}{bytes_fetched}, 65536, 'counted: the read-ahead');
is(run_storage(\%env, 'read', 'ranged/none.bin', "$dir/r.bin", '--range', '0:1')->{exit}, 66,
	'ranged read of a missing object: 66');
is(run_storage(\%env, 'read', $object, "$dir/r.bin", '--range', '-1:5')->{exit}, 64,
	'a negative offset: 64');

# prefix removal: the tree below, links removed and never followed, nothing else
for my $key ('tmp/job-1/a.bin', 'tmp/job-1/seg/0001.h264', 'tmp/job-1/seg/deep/x.bin',
	'tmp/job-10/keep.bin', 'tmp/job-1.bin')
{
	is(run_storage(\%env, 'put', $files{one}, $key)->{exit}, 0, "put $key");
}
symlink($outside, "$root/tmp/job-1/seg/dir-link") or die;
symlink("$outside/secret.txt", "$root/tmp/job-1/file-link") or die;
my $removal = run_storage(\%env, 'delete-prefix', 'tmp/job-1/');
is($removal->{exit}, 0, 'delete-prefix') or diag $removal->{stderr};
is($removal->{json}{removed}, 5, 'three objects and two links removed');
ok(!-e "$root/tmp/job-1", 'the prefix\'s directory is gone');
ok(-f "$root/tmp/job-10/keep.bin" && -f "$root/tmp/job-1.bin", 'keys that only start alike stay');
ok(-f "$outside/secret.txt" && -d "$outside/sub", 'the links\' targets are untouched');
is(run_storage(\%env, 'delete-prefix', 'tmp/job-1/')->{json}{removed}, 0,
	'nothing below the prefix: success, 0 removed');
is(run_storage(\%env, 'delete-prefix', 'no/such/dir/')->{json}{removed}, 0, 'nor a missing path');
# the ancestors the removal leaves empty go (S3 has no directories), never a
# top-level one nor one that still holds something
for my $key ('split/job-2/1/a.bin', 'split/job-3/1/a.bin', 'split/job-3/2/b.bin')
{
	is(run_storage(\%env, 'put', $files{one}, $key)->{exit}, 0, "put $key");
}
is(run_storage(\%env, 'delete-prefix', 'split/job-2/1/')->{exit}, 0, 'delete-prefix split/job-2/1/');
ok(!-e "$root/split/job-2", 'its emptied parent split/job-2 is gone');
ok(-d "$root/split", 'the top-level split stays');
is(run_storage(\%env, 'delete-prefix', 'split/job-3/1/')->{exit}, 0, 'delete-prefix split/job-3/1/');
ok(!-e "$root/split/job-3/1" && -f "$root/split/job-3/2/b.bin", 'a parent that still holds an object stays');
is(run_storage(\%env, 'delete-prefix', 'link-out/')->{exit}, 77, 'a prefix that is a link: 77');
ok(-f "$outside/secret.txt", 'and nothing removed through it');
for my $bad ('tmp', '/tmp/', 'tmp//x/', '../x/', 'a/../b/', './', '/')
{
	is(run_storage(\%env, 'delete-prefix', $bad)->{exit}, 64, "prefix '$bad' refused: 64");
}

# a key whose folder is a file
is(run_storage(\%env, 'put', $files{one}, 'top-level.bin/below')->{exit}, 70,
	'a key below an object: 70');

# out of space: the old object survives, nothing is left behind
my $limit = "ulimit -f 4096; trap '' XFSZ; exec \"\$@\"";
my $full = run_storage(\%env, [ 'sh', '-c', $limit, 'sh' ], 'put', $files{large}, $keys[1]);
is($full->{exit}, 75, 'put out of space: 75');
like($full->{last_error}, qr/File too large|No space/, 'the message says why');
ok(same_file($files{small}, "$root/$keys[1]") || same_file($files{one}, "$root/$keys[1]"),
	'the previous object is intact');
is(run_storage(\%env, 'put', $files{large}, 'big.bin')->{exit}, 0, 'a large object');
$full = run_storage(\%env, [ 'sh', '-c', $limit, 'sh' ], 'get', 'big.bin', "$dir/big-copy.bin");
is($full->{exit}, 75, 'get out of space: 75');
ok(!-e "$dir/big-copy.bin", 'no partial download left behind');
is_deeply([ temp_files_in($root), temp_files_in($dir) ], [], 'no temporary files left');

# permissions (meaningless as root, who may write anywhere)
SKIP:
{
	skip 'running as root', 2 if $> == 0;
	make_path("$root/readonly");
	chmod 0555, "$root/readonly";
	my $r = run_storage(\%env, 'put', $files{one}, 'readonly/x.bin');
	is($r->{exit}, 77, 'a folder we may not write: 77');
	like($r->{last_error}, qr/Permission denied/, 'the message says so');
	chmod 0755, "$root/readonly";
}

# usage
my $help = run_storage(\%env, '--help');
is($help->{exit}, 0, '--help');
like($help->{stdout}, qr/storage presign KEY \[--expires SECONDS\]/, 'prints the usage');
is(run_storage(\%env)->{exit}, 64, 'no operation: 64');
is(run_storage(\%env, 'frobnicate', 'k')->{exit}, 64, 'unknown operation: 64');
is(run_storage(\%env, 'get', 'k')->{exit}, 64, 'missing operand: 64');
is(run_storage(\%env, 'head', '')->{exit}, 64, 'empty key: 64');
is(run_storage({}, 'head', 'k')->{exit}, 64, 'no storage URL: 64');
is(run_storage({VPROXY_STORAGE_URL => 'file://relative/dir'}, 'head', 'k')->{exit}, 64,
	'relative file URL: 64');
is(run_storage({VPROXY_STORAGE_URL => 'ftp://host/dir'}, 'head', 'k')->{exit}, 64,
	'unknown scheme: 64');
is(run_storage(\%env, 'put', "$dir/no-such-file", 'k')->{exit}, 66, 'put of a missing file: 66');

done_testing();
