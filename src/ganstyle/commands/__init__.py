"""Subcommands of the ``ganstyle`` command line (see ganstyle.cli)."""
