from stockade.cli import main

main()
