import sys

from cli.app import entry

sys.exit(entry())
