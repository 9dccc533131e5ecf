from tenement.cli import main

main()
