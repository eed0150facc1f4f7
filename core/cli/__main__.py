"""``python -m bookwell.core.cli``: the ``bookwell`` command."""

from bookwell.core.cli.root import main

main()
