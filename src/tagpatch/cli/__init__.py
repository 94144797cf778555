"""``tagpatch``: the operator's command line (groups, runs, report, reconcile)."""
