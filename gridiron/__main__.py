import sys

from gridiron.cli import main

sys.exit(main())
