"""``python -m mmopsd``: the same command line as the ``mmopsd`` script."""

from mmopsd.cli import main

raise SystemExit(main())
