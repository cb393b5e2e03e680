"""``python -m flowctl`` runs the command-line interface."""

from flowctl.cli.app import main

if __name__ == "__main__":
    main()
