"""`python -m overfeat_cli`: the `overfeat` command."""

import sys

from overfeat_cli import main

sys.exit(main())
