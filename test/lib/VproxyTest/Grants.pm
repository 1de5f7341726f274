# VproxyTest::Grants: the grants src/server/README.md documents for the
# application, monitor and worker roles, read from the README itself (by
# test/lib/readme-block, as sql/privileges.sql does) so that the tests use
# exactly what the README says.
#
#   $vp->sql(VproxyTest::Grants::sql('worker'));   # GRANT ... TO vproxy_worker
package VproxyTest::Grants;

use strict;
use warnings;
use Carp;
use File::Basename qw(dirname);

# The SQL block after "<!-- grants: $kind -->" in src/server/README.md.
sub sql
{
	my ($kind) = @_;
	my $reader = dirname(__FILE__) . '/../readme-block';
	my $sql = `"$reader" "grants: $kind"`;
	croak "$reader could not read the grants of $kind" if $? != 0;
	return $sql;
}

1;
