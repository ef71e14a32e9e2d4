"""The console: a web app, in its own process, onto the same operations as the CLI."""
