"""``python -m pitstop``: the same as the ``pitstop`` command."""

from pitstop.cli.main import main

main()
