"""`python -m worker ...`: see worker/cli.py."""

from worker.cli import main

raise SystemExit(main())
