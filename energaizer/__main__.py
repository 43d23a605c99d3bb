"""Run the command line as `python -m energaizer`."""

from energaizer.cli import main

main()
