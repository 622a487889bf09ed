from leakmon.cli.main import main

raise SystemExit(main())
