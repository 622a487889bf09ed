"""One module per CLI command: add_args(parser) and run(args) -> exit status."""
