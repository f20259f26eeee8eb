import sys

from orthocore.cli import main

sys.exit(main())
