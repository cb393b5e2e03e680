"""The command-line layer: one module per command; each parses options, calls one core function,
renders the result and returns an exit code. No core logic lives here."""
