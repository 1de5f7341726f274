# Sourced by test/run-all and test/run-some: a copy of the tree that the
# postgres user owns (initdb refuses root), and how to run commands as that
# user with PostgreSQL's TAP modules and the shared fixture folder.
#   make_work_tree          sets $work (removed at exit unless KEEP_TEST_DIR)
#   as_postgres CMD...      runs CMD as postgres
#   show_logs TESTDIR       prints what failed suites left there; returns 1

make_work_tree() {
	work=$(mktemp -d /tmp/vproxy-tests.XXXXXX)
	trap '[ -n "${KEEP_TEST_DIR:-}" ] || rm -rf "$work"' EXIT
	mkdir "$work/tree" "$work/home" "$work/fixtures"
	tar -C "$top" --exclude=./.git -cf - . | tar -C "$work/tree" -xf -
	chown -R postgres: "$work"
	pgxs_perl=$(dirname "$(pg_config --pgxs)")/../test/perl
	fixtures=${VPROXY_FIXTURE_DIR:-$work/fixtures}
}

as_postgres() {
	runuser -u postgres -- env HOME="$work/home" PATH="$(pg_config --bindir):$PATH" PG_CONFIG="$(pg_config --bindir)/pg_config" \
		PERL5LIB="$pgxs_perl" VPROXY_FIXTURE_DIR="$fixtures" "$@"
}

show_logs() {
	cd "$1"
	for f in regression.diffs output_iso/regression.diffs; do
		[ -f "$f" ] && { echo "=== $f"; cat "$f"; }
	done
	# the TAP suites that failed: their test log and their servers' logs
	for f in tmp_check/log/regress_log_*; do
		[ -f "$f" ] && grep -q "not ok" "$f" || continue
		suite=${f#tmp_check/log/regress_log_}
		for g in "$f" tmp_check/log/"${suite}"_*.log; do
			[ -f "$g" ] && { echo "=== $g"; tail -n 300 "$g"; }
		done
	done
	return 1
}
