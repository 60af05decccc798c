"""``python -m sidecar``: the same as the ``qlara-sidecar`` command (children of `up` use it)."""

from sidecar.cli import main

main(prog_name="qlara-sidecar")
