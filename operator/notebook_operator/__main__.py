from notebook_operator.cli import main

raise SystemExit(main())
