"""The command line and its demo (see docs/cli.md): an application of the library."""
