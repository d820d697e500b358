from edgepose.cli import main

main()
