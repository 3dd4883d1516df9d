"""python -m agricare.cli"""

import sys

from agricare.cli import main

sys.exit(main())
