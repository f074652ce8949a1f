"""``python -m cli.mkctl``: the same as the ``mkctl`` console script."""

from . import main

main()
