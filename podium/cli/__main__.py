"""``python -m podium.cli``: the ``podium`` command, for environments where the script is not on PATH."""

from . import main

main()
