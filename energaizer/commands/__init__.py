"""CLI commands that live outside `energaizer/cli.py`.

Each module defines `register(app)`, which adds its commands to the typer app; the
functions keep to the CLI's rule: parse options, call one library function.
"""
