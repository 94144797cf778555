"""``python -m tagpatch.cli``: the same as the ``tagpatch`` command."""

import sys

from tagpatch.cli.app import main

sys.exit(main())
