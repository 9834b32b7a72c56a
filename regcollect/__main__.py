from regcollect.cli import main

main()
