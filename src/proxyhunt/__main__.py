from proxyhunt.cli import main

main()
