"""`python -m gridiron`: the program's entry point, the one file of the package that reaches the
command-line application (`cli`, outside the package); nothing imports it."""

import sys

from cli import entry

sys.exit(entry())
