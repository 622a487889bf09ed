from leakmon.cli import main

raise SystemExit(main())
