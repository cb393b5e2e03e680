"""``python -m flowctl`` and the ``flowctl`` command: the command-line interface.

The cyclic garbage collector is off while flowctl starts: a command is a short-lived process
that builds large acyclic structures (imports, the YAML node tree, the pipeline model, the
plan), and collections only slow that down (a third of parsing a 47,500-edge pipeline).
``flowctl run`` turns it back on, with everything built so far frozen, before its loop.
"""

import gc


def main() -> None:
    gc.disable()
    from flowctl.cli.app import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
