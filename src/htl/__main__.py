from htl.cli import main

raise SystemExit(main())
