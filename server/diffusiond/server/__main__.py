from diffusiond.server.cli import main

main()
