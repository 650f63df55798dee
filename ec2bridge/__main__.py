import sys

from ec2bridge.cli import main

sys.exit(main())
